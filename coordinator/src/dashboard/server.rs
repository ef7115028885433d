//! The HTTP side: the routes, the handlers that render each page, the
//! access check, and the headers every answer carries (a content security
//! policy that allows our own script and nothing from anywhere else).

use super::auth::{self, Access};
use super::page::{banner, not_found, page, Nav, SCRIPT_PATH};
use super::plane::Plane;
use super::report_page::Sort;
use super::runs::RunCache;
use super::sse::{parts, Part};
use super::{agent_page, compare_page, fleet_page, report_page, runs, runs_page, scenario_page};
use axum::extract::{Path, Query, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Form, Router};
use maud::{html, Markup};
use serde::Deserialize;
use std::sync::{Arc, Mutex};

/// The policy of every dashboard page.
pub const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'unsafe-inline'; img-src 'self' data:; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// What the handlers share.
pub struct Inner {
    /// The control plane.
    pub plane: Arc<Plane>,
    /// The runs read so far.
    pub runs: RunCache,
    /// Whether the page may send commands.
    pub allow_commands: bool,
    /// The access token, if one is required.
    pub token: Option<String>,
    /// The CSRF value of the command forms.
    pub csrf: String,
    fleet: Mutex<Option<(u64, String)>>,
}

/// The shared state of the handlers.
pub type App = Arc<Inner>;

/// The handlers' state.
pub fn app(plane: Arc<Plane>, allow_commands: bool, token: Option<String>) -> App {
    Arc::new(Inner {
        plane,
        runs: RunCache::default(),
        allow_commands,
        token,
        csrf: auth::secret(),
        fleet: Mutex::new(None),
    })
}

/// Every route.
pub fn router(app: App) -> Router {
    Router::new()
        .route("/", get(fleet))
        .route("/agent/{id}", get(agent))
        .route("/agent/{id}/command", post(command))
        .route("/runs", get(runs_list))
        .route("/runs/{id}", get(report))
        .route("/compare", get(compare))
        .route("/live/{run}", get(live))
        .route("/events/fleet", get(fleet_events))
        .route("/events/agent/{id}", get(agent_events))
        .route("/events/runs", get(runs_events))
        .route("/events/live/{run}", get(live_events))
        .route("/events/plane", get(plane_events))
        .route(SCRIPT_PATH, get(script))
        .fallback(|| async { missing("No such page.") })
        .layer(axum::middleware::from_fn_with_state(app.clone(), guard))
        .with_state(app)
}

async fn guard(State(app): State<App>, request: Request, next: Next) -> Response {
    if let Some(token) = &app.token {
        match auth::check(
            token,
            request.uri().path(),
            request.uri().query(),
            request.headers(),
        ) {
            Access::Allowed => {}
            Access::SetCookie { location } => return auth::set_cookie(token, &location),
            Access::Denied => {
                let body = html! { h1 { "This dashboard needs its token" } p { "Open it once as /?token=TOKEN (the token given to geolb dashboard --token)." } };
                return (
                    StatusCode::UNAUTHORIZED,
                    Html(page("token needed", Nav::None, None, html! {}, body).into_string()),
                )
                    .into_response();
            }
        }
    }
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    for (name, value) in [
        (header::CONTENT_SECURITY_POLICY, CSP),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        // Not `no-referrer`: with it a form POST says `Origin: null`.
        (header::REFERRER_POLICY, "same-origin"),
        (header::CACHE_CONTROL, "no-store"),
    ] {
        headers.insert(name, HeaderValue::from_static(value));
    }
    response
}

fn missing(what: &str) -> Response {
    (StatusCode::NOT_FOUND, Html(not_found(what).into_string())).into_response()
}

fn html_page(markup: Markup) -> Response {
    Html(markup.into_string()).into_response()
}

async fn script() -> Response {
    (
        [(header::CONTENT_TYPE, "text/javascript; charset=utf-8")],
        super::script::SCRIPT,
    )
        .into_response()
}

fn the_banner(app: &App) -> Markup {
    banner(app.plane.reachable(), &app.plane.url, app.allow_commands)
}

fn banner_part(app: &App) -> Part {
    ("plane", the_banner(app).into_string())
}

fn snapshot(app: &App) -> fleet_page::FleetSnapshot {
    let (agents, clients) = match app.plane.connected() {
        Some(c) => (c.fleet.agents(), c.fleet.clients()),
        None => Default::default(),
    };
    fleet_page::FleetSnapshot {
        agents,
        clients,
        runs: app.plane.live_runs.list(),
    }
}

/// The fleet part, rendered once per tick whoever asks.
fn fleet_part(app: &App) -> String {
    let tick = *app.plane.ticks().borrow();
    let mut cache = app.fleet.lock().unwrap_or_else(|p| p.into_inner());
    match &*cache {
        Some((t, html)) if *t == tick => html.clone(),
        _ => {
            let html = fleet_page::part(&snapshot(app)).into_string();
            *cache = Some((tick, html.clone()));
            html
        }
    }
}

async fn fleet(State(app): State<App>) -> Response {
    let body = html! { h1 { "Fleet" } div #fleet { (maud::PreEscaped(fleet_part(&app))) } };
    html_page(page(
        "Fleet",
        Nav::Fleet,
        Some("/events/fleet"),
        the_banner(&app),
        body,
    ))
}

async fn fleet_events(State(app): State<App>) -> impl IntoResponse {
    let a = app.clone();
    parts(&app.plane, move || {
        let app = a.clone();
        async move { vec![banner_part(&app), ("fleet", fleet_part(&app))] }
    })
}

fn agent_part(app: &App, id: &str) -> Option<String> {
    let c = app.plane.connected()?;
    let view = c.fleet.agent(id)?;
    let history = app.plane.history.agent(id).unwrap_or_default();
    let clients: Vec<_> = c
        .fleet
        .clients()
        .into_values()
        .filter(|e| e.agent == id)
        .collect();
    Some(agent_page::part(&view, &history, &clients, geolb_proto::now_ms()).into_string())
}

fn agent_page_for(app: &App, id: &str, result: Option<(bool, String)>) -> Response {
    let Some(part) = agent_part(app, id) else {
        return missing(&format!(
            "No agent {id} is known to the control plane (or it is not reachable)."
        ));
    };
    let role = app
        .plane
        .connected()
        .and_then(|c| c.fleet.agent(id))
        .map(|a| a.role())
        .unwrap_or_default();
    let body = html! {
        h1 { (id) }
        @if let Some((ok, line)) = &result { div.result.(if *ok { "" } else { "bad" }) #result { (line) } }
        div #agent { (maud::PreEscaped(part)) }
        @if app.allow_commands { (agent_page::commands(id, role, &app.csrf)) }
        h2 { "Its child's output" }
        p.mute { "geolb-agent keeps no copy of its child's output: it passes it through to its own standard output (the lab writes it to <lab dir>/logs)." }
    };
    html_page(page(
        id,
        Nav::Fleet,
        Some(&format!("/events/agent/{id}")),
        the_banner(app),
        body,
    ))
}

async fn agent(State(app): State<App>, Path(id): Path<String>) -> Response {
    agent_page_for(&app, &id, None)
}

async fn agent_events(State(app): State<App>, Path(id): Path<String>) -> Response {
    if agent_part(&app, &id).is_none() {
        return missing("No such agent.");
    }
    let a = app.clone();
    parts(&app.plane, move || {
        let (app, id) = (a.clone(), id.clone());
        async move {
            let mut out = vec![banner_part(&app)];
            out.extend(agent_part(&app, &id).map(|p| ("agent", p)));
            out
        }
    })
    .into_response()
}

async fn command(
    State(app): State<App>,
    Path(id): Path<String>,
    headers: HeaderMap,
    Form(form): Form<super::commands::CommandForm>,
) -> Response {
    if !app.allow_commands {
        return (
            StatusCode::FORBIDDEN,
            Html(
                not_found("This dashboard is read-only: start it with --allow-commands.")
                    .into_string(),
            ),
        )
            .into_response();
    }
    if let Err(why) = auth::csrf_ok(&headers, &form.csrf, &app.csrf) {
        return (
            StatusCode::FORBIDDEN,
            Html(super::page::error("Refused", why).into_string()),
        )
            .into_response();
    }
    let Some(c) = app.plane.connected() else {
        return agent_page_for(
            &app,
            &id,
            Some((false, "the control plane is unreachable".into())),
        );
    };
    let result = super::commands::send(&c.control, &id, &form).await;
    tracing::info!(agent = %id, verb = %form.verb, ok = result.0, "Command from the dashboard.");
    agent_page_for(&app, &id, Some(result))
}

/// `?scenario=` of the runs page.
#[derive(Debug, Default, Deserialize)]
pub struct RunsQuery {
    /// Only this scenario's runs.
    #[serde(default)]
    pub scenario: Option<String>,
}

async fn runs_part(app: &App, scenario: Option<&str>, lazy: bool) -> String {
    let (rows, error) = match app.plane.connected() {
        Some(c) => match app.runs.refresh(&c.control, lazy).await {
            Ok(rows) => (rows, None),
            Err(e) => (Vec::new(), Some(e.to_string())),
        },
        None => (
            Vec::new(),
            Some("the control plane is unreachable; the runs show when it is back".to_string()),
        ),
    };
    runs_page::part(
        &rows,
        &app.plane.live_runs.list(),
        scenario,
        error.as_deref(),
    )
    .into_string()
}

async fn runs_list(State(app): State<App>, Query(q): Query<RunsQuery>) -> Response {
    let scenario = q.scenario.filter(|s| !s.is_empty());
    let part = runs_part(&app, scenario.as_deref(), false).await;
    let events = match &scenario {
        Some(s) => format!("/events/runs?scenario={s}"),
        None => "/events/runs".to_string(),
    };
    let body = html! { h1 { "Runs" } div #runs-part { (maud::PreEscaped(part)) } };
    html_page(page(
        "Runs",
        Nav::Runs,
        Some(&events),
        the_banner(&app),
        body,
    ))
}

async fn runs_events(State(app): State<App>, Query(q): Query<RunsQuery>) -> impl IntoResponse {
    let a = app.clone();
    let scenario = q.scenario.filter(|s| !s.is_empty());
    parts(&app.plane, move || {
        let (app, scenario) = (a.clone(), scenario.clone());
        async move {
            vec![
                banner_part(&app),
                (
                    "runs-part",
                    runs_part(&app, scenario.as_deref(), true).await,
                ),
            ]
        }
    })
}

async fn load(app: &App, id: &str) -> Result<crate::report::Report, Response> {
    let Some(c) = app.plane.connected() else {
        return Err((
            StatusCode::SERVICE_UNAVAILABLE,
            Html(
                not_found("The control plane is unreachable; try again when it is back.")
                    .into_string(),
            ),
        )
            .into_response());
    };
    match runs::report(&c.control, id).await {
        Ok(Some(r)) => Ok(r),
        Ok(None) => Err(missing(&format!(
            "No report {id} is kept on the control plane."
        ))),
        Err(e) => Err((
            StatusCode::BAD_GATEWAY,
            Html(super::page::error("Cannot read the report", &e.to_string()).into_string()),
        )
            .into_response()),
    }
}

async fn report(
    State(app): State<App>,
    Path(id): Path<String>,
    sort: axum::extract::RawQuery,
) -> Response {
    let r = match load(&app, &id).await {
        Ok(r) => r,
        Err(response) => return response,
    };
    // A bad sort falls back to the default order rather than an error page.
    let sort = sort
        .0
        .and_then(|q| serde_urlencoded_sort(&q))
        .unwrap_or_default();
    let body = report_page::body(&r, sort, report_page::Links::Live);
    html_page(page(
        &format!("{} {}", r.scenario, r.id),
        Nav::Runs,
        Some("/events/plane"),
        the_banner(&app),
        body,
    ))
}

fn serde_urlencoded_sort(query: &str) -> Option<Sort> {
    let uri: axum::http::Uri = format!("/?{query}").parse().ok()?;
    Query::<Sort>::try_from_uri(&uri).ok().map(|q| q.0)
}

/// `?a=&b=` of the compare page.
#[derive(Debug, Default, Deserialize)]
pub struct CompareQuery {
    /// Run A.
    #[serde(default)]
    pub a: Option<String>,
    /// Run B.
    #[serde(default)]
    pub b: Option<String>,
}

async fn compare(State(app): State<App>, Query(q): Query<CompareQuery>) -> Response {
    let (Some(a), Some(b)) = (q.a.filter(|s| !s.is_empty()), q.b.filter(|s| !s.is_empty())) else {
        let body = html! { h1 { "Compare" } p { "Pick two runs (A and B) on " a href="/runs" { "the runs page" } "." } };
        return html_page(page(
            "Compare",
            Nav::Runs,
            Some("/events/plane"),
            the_banner(&app),
            body,
        ));
    };
    let (ra, rb) = match (load(&app, &a).await, load(&app, &b).await) {
        (Ok(ra), Ok(rb)) => (ra, rb),
        (Err(response), _) | (_, Err(response)) => return response,
    };
    html_page(page(
        "Compare",
        Nav::Runs,
        Some("/events/plane"),
        the_banner(&app),
        compare_page::body(&ra, &rb),
    ))
}

fn live_part(app: &App, run: &str) -> Option<String> {
    let r = app.plane.live_runs.get(run)?;
    let clients: Vec<_> = app
        .plane
        .connected()
        .map(|c| c.fleet.clients().into_values().collect())
        .unwrap_or_default();
    Some(scenario_page::part(&r, &clients, geolb_proto::now_ms()).into_string())
}

async fn live(State(app): State<App>, Path(run): Path<String>) -> Response {
    let Some(part) = live_part(&app, &run) else {
        return missing(&format!("No scenario run {run} has been seen since the dashboard started; finished runs are on the runs page."));
    };
    let scenario = app
        .plane
        .live_runs
        .get(&run)
        .map(|r| r.scenario)
        .unwrap_or_default();
    let body =
        html! { h1 { (scenario) " " span.mute { (run) } } div #run { (maud::PreEscaped(part)) } };
    html_page(page(
        &format!("{scenario} {run}"),
        Nav::Runs,
        Some(&format!("/events/live/{run}")),
        the_banner(&app),
        body,
    ))
}

async fn live_events(State(app): State<App>, Path(run): Path<String>) -> impl IntoResponse {
    let a = app.clone();
    parts(&app.plane, move || {
        let (app, run) = (a.clone(), run.clone());
        async move {
            let mut out = vec![banner_part(&app)];
            out.extend(live_part(&app, &run).map(|p| ("run", p)));
            out
        }
    })
}

async fn plane_events(State(app): State<App>) -> impl IntoResponse {
    let a = app.clone();
    parts(&app.plane, move || {
        let app = a.clone();
        async move { vec![banner_part(&app)] }
    })
}
