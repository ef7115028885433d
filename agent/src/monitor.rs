//! Reads a nats-server's monitoring endpoints (`/healthz`, `/varz`,
//! `/routez`, `/gatewayz`) over plain HTTP on loopback or a private network.
//!
//! The requests are HTTP/1.0 with `Connection: close`, so the server answers
//! with a plain body that ends at EOF (no chunking), which keeps this client
//! a few lines long.

use geolb_proto::{GatewayMetric, ServerMetrics};
use serde_json::Value;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Largest monitoring response read; bigger bodies are an error.
const MAX_BODY: usize = 4 << 20;

/// A nats-server monitoring endpoint, e.g. `http://127.0.0.1:8222`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Monitor {
    host_port: String,
    timeout: Duration,
}

/// Why a monitoring endpoint could not be read.
#[derive(Debug, thiserror::Error)]
pub enum MonitorError {
    /// The URL is not `http://HOST:PORT`.
    #[error("monitor URL {0:?} is not http://HOST:PORT")]
    BadUrl(String),
    /// Connecting, reading or writing failed.
    #[error("cannot read {path} from {host}: {reason}")]
    Io {
        /// host:port.
        host: String,
        /// The endpoint path.
        path: String,
        /// What failed.
        reason: String,
    },
    /// The answer was not HTTP or not JSON.
    #[error("bad answer from {path}: {0}", path = .1)]
    BadAnswer(String, String),
}

impl Monitor {
    /// Parses `http://HOST:PORT` (a trailing slash is fine).
    pub fn parse(url: &str) -> Result<Monitor, MonitorError> {
        let rest = url
            .strip_prefix("http://")
            .ok_or_else(|| MonitorError::BadUrl(url.to_string()))?;
        let host_port = rest.trim_end_matches('/');
        if host_port.is_empty() || host_port.contains('/') || !host_port.contains(':') {
            return Err(MonitorError::BadUrl(url.to_string()));
        }
        Ok(Monitor {
            host_port: host_port.to_string(),
            timeout: Duration::from_secs(2),
        })
    }

    /// GETs `path` and returns the status code and body.
    pub async fn get(&self, path: &str) -> Result<(u16, String), MonitorError> {
        let io = |reason: String| MonitorError::Io {
            host: self.host_port.clone(),
            path: path.to_string(),
            reason,
        };
        let exchange = async {
            let mut stream = TcpStream::connect(&self.host_port).await?;
            let request = format!(
                "GET {path} HTTP/1.0\r\nHost: {}\r\nConnection: close\r\n\r\n",
                self.host_port
            );
            stream.write_all(request.as_bytes()).await?;
            let mut raw = Vec::new();
            (&mut stream)
                .take(MAX_BODY as u64)
                .read_to_end(&mut raw)
                .await?;
            Ok::<_, std::io::Error>(raw)
        };
        let raw = tokio::time::timeout(self.timeout, exchange)
            .await
            .map_err(|_| io(format!("no answer in {:?}", self.timeout)))?
            .map_err(|e| io(e.to_string()))?;
        parse_response(&raw).ok_or_else(|| MonitorError::BadAnswer("not HTTP".into(), path.into()))
    }

    /// GETs `path` and parses the body as JSON.
    pub async fn json(&self, path: &str) -> Result<Value, MonitorError> {
        let (_, body) = self.get(path).await?;
        serde_json::from_str(&body).map_err(|e| MonitorError::BadAnswer(e.to_string(), path.into()))
    }

    /// `/healthz` status code (200 when ready).
    pub async fn healthz(&self) -> Result<u16, MonitorError> {
        self.get("/healthz").await.map(|(status, _)| status)
    }

    /// Current client connections from `/varz`.
    pub async fn connections(&self) -> Result<u64, MonitorError> {
        Ok(self.json("/varz").await?["connections"]
            .as_u64()
            .unwrap_or(0))
    }

    /// All the useful fields of the four endpoints; never fails, the error
    /// (if any) is in [`ServerMetrics::error`].
    pub async fn server_metrics(&self) -> ServerMetrics {
        let mut metrics = ServerMetrics::default();
        match self.healthz().await {
            Ok(status) => {
                metrics.healthz_status = status;
                metrics.healthy = status == 200;
            }
            Err(e) => {
                metrics.error = Some(e.to_string());
                return metrics;
            }
        }
        let read = async {
            let varz = self.json("/varz").await?;
            let routez = self.json("/routez").await?;
            let gatewayz = self.json("/gatewayz").await?;
            Ok::<_, MonitorError>((varz, routez, gatewayz))
        };
        match read.await {
            Ok((varz, routez, gatewayz)) => fill(&mut metrics, &varz, &routez, &gatewayz),
            Err(e) => metrics.error = Some(e.to_string()),
        }
        metrics
    }
}

fn parse_response(raw: &[u8]) -> Option<(u16, String)> {
    let text = String::from_utf8_lossy(raw);
    let (head, body) = text.split_once("\r\n\r\n")?;
    let status = head
        .lines()
        .next()?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()?;
    Some((status, body.to_string()))
}

fn u64_of(v: &Value, key: &str) -> u64 {
    v[key].as_u64().unwrap_or(0)
}

fn str_of(v: &Value, key: &str) -> String {
    v[key].as_str().unwrap_or_default().to_string()
}

/// Copies the useful fields of `/varz`, `/routez` and `/gatewayz`.
pub fn fill(m: &mut ServerMetrics, varz: &Value, routez: &Value, gatewayz: &Value) {
    m.version = str_of(varz, "version");
    m.server_id = str_of(varz, "server_id");
    m.server_name = str_of(varz, "server_name");
    m.cluster = str_of(&varz["cluster"], "name");
    m.connections = u64_of(varz, "connections");
    m.in_msgs = u64_of(varz, "in_msgs");
    m.out_msgs = u64_of(varz, "out_msgs");
    m.in_bytes = u64_of(varz, "in_bytes");
    m.out_bytes = u64_of(varz, "out_bytes");
    m.slow_consumers = u64_of(varz, "slow_consumers");
    m.subscriptions = u64_of(varz, "subscriptions");
    m.mem_bytes = u64_of(varz, "mem");
    m.cpu_pct = varz["cpu"].as_f64().unwrap_or(0.0);
    m.routes_configured = varz["cluster"]["urls"]
        .as_array()
        .map_or(0, |a| a.len() as u32);
    m.routes = route_peers(routez);
    m.gateway_name = str_of(gatewayz, "name");
    m.gateways = gateways(gatewayz);
}

/// Distinct route peers in `/routez`: with route pooling one peer has several routes.
pub fn route_peers(routez: &Value) -> u32 {
    let mut peers: Vec<&str> = routez["routes"]
        .as_array()
        .map(|routes| {
            routes
                .iter()
                .filter_map(|r| r["remote_name"].as_str().or(r["remote_id"].as_str()))
                .collect()
        })
        .unwrap_or_default();
    peers.sort_unstable();
    peers.dedup();
    peers.len() as u32
}

fn gateways(gatewayz: &Value) -> Vec<GatewayMetric> {
    let mut out: Vec<GatewayMetric> = Vec::new();
    if let Some(outbound) = gatewayz["outbound_gateways"].as_object() {
        for name in outbound.keys() {
            out.push(GatewayMetric {
                name: name.clone(),
                outbound: true,
                inbound: 0,
            });
        }
    }
    if let Some(inbound) = gatewayz["inbound_gateways"].as_object() {
        for (name, conns) in inbound {
            let count = conns.as_array().map_or(0, |a| a.len() as u32);
            match out.iter_mut().find(|g| &g.name == name) {
                Some(g) => g.inbound = count,
                None => out.push(GatewayMetric {
                    name: name.clone(),
                    outbound: false,
                    inbound: count,
                }),
            }
        }
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    out
}

/// Whether a restarted server is joined again as well as it was before:
/// healthy, as many route peers, and every outbound gateway back.
pub fn rejoined(before: &ServerMetrics, now: &ServerMetrics) -> bool {
    let gateways_back = before
        .gateways
        .iter()
        .filter(|g| g.outbound)
        .all(|g| now.gateways.iter().any(|n| n.name == g.name && n.outbound));
    now.healthy && now.routes >= before.routes && gateways_back
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn parses_monitor_urls() {
        assert!(Monitor::parse("http://127.0.0.1:8222").is_ok());
        assert!(Monitor::parse("http://127.0.0.1:8222/").is_ok());
        for bad in [
            "127.0.0.1:8222",
            "https://h:1",
            "http://h",
            "http://h:1/varz",
            "http://",
        ] {
            assert!(Monitor::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn parses_http_answers() {
        let raw = b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\n\r\n{\"status\":\"unavailable\"}";
        assert_eq!(
            parse_response(raw),
            Some((503, "{\"status\":\"unavailable\"}".to_string()))
        );
        assert_eq!(parse_response(b"garbage"), None);
    }

    #[test]
    fn fills_metrics_from_sample_endpoints() {
        let varz = json!({"version":"2.12.8","server_id":"NA","server_name":"lon-1",
            "connections":3,"in_msgs":10,"mem":1000,"cpu":1.5,
            "cluster":{"name":"lon","urls":["127.0.0.1:1","127.0.0.1:2"]}});
        let routez = json!({"num_routes": 4, "routes": [
            {"remote_name": "lon-2"}, {"remote_name": "lon-2"},
            {"remote_name": "lon-3"}, {"remote_id": "NX"}]});
        let gatewayz = json!({"name":"lon",
            "outbound_gateways":{"ams":{},"dfw":{}},
            "inbound_gateways":{"ams":[{},{}],"sgp":[{}]}});
        let mut m = ServerMetrics {
            healthy: true,
            healthz_status: 200,
            ..Default::default()
        };
        fill(&mut m, &varz, &routez, &gatewayz);
        assert_eq!(m.version, "2.12.8");
        assert_eq!(m.cluster, "lon");
        assert_eq!((m.routes, m.routes_configured), (3, 2));
        assert_eq!(m.gateways.len(), 3);
        assert_eq!(m.gateways[0].inbound, 2);
        let before = m.clone();
        assert!(rejoined(&before, &m));
        let mut now = m.clone();
        now.routes = 2;
        assert!(!rejoined(&before, &now), "a route peer is missing");
        let mut now = m.clone();
        now.gateways.retain(|g| g.name != "dfw");
        assert!(!rejoined(&before, &now), "a gateway is missing");
        let mut now = m.clone();
        now.healthy = false;
        assert!(!rejoined(&before, &now), "not healthy");
    }
}
