//! The S3 store against a real S3 server (SeaweedFS), seen through a
//! loopback HTTP proxy that records every request: single PUTs under 5 MiB
//! and multipart uploads above, path-style, and never a checksum header
//! (Backblaze B2 refuses `x-amz-checksum-*` and
//! `x-amz-sdk-checksum-algorithm` with a 400).

use bytes::Bytes;
use geolb_tests::s3::{self, S3Server, BUCKET};
use geolb_tests::with_timeout;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};

const T: Duration = Duration::from_secs(60);

/// One request as the proxy saw it.
#[derive(Debug, Clone)]
struct Seen {
    method: String,
    target: String,
    headers: Vec<(String, String)>,
}

/// Forwards every connection to `upstream`, recording each request's head.
async fn recording_proxy(upstream: u16) -> (u16, Arc<Mutex<Vec<Seen>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    tokio::spawn(async move {
        while let Ok((client, _)) = listener.accept().await {
            let log = log.clone();
            tokio::spawn(async move {
                let server = TcpStream::connect(("127.0.0.1", upstream)).await.unwrap();
                let (client_read, mut client_write) = client.into_split();
                let (mut server_read, mut server_write) = server.into_split();
                tokio::spawn(async move {
                    let _ = tokio::io::copy(&mut server_read, &mut client_write).await;
                });
                let mut reader = BufReader::new(client_read);
                while let Some((head, seen, length)) = read_head(&mut reader).await {
                    log.lock().unwrap().push(seen);
                    if server_write.write_all(&head).await.is_err() {
                        return;
                    }
                    let mut body = vec![0; length];
                    if reader.read_exact(&mut body).await.is_err()
                        || server_write.write_all(&body).await.is_err()
                    {
                        return;
                    }
                }
            });
        }
    });
    (port, seen)
}

/// One request head: its bytes, what it says, and its Content-Length.
async fn read_head(
    reader: &mut BufReader<tokio::net::tcp::OwnedReadHalf>,
) -> Option<(Vec<u8>, Seen, usize)> {
    let mut head = Vec::new();
    let mut lines = Vec::new();
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).await.ok()? == 0 {
            return None;
        }
        head.extend_from_slice(line.as_bytes());
        if line == "\r\n" {
            break;
        }
        lines.push(line.trim_end().to_string());
    }
    let mut request = lines.first()?.split(' ');
    let (method, target) = (request.next()?.to_string(), request.next()?.to_string());
    let headers: Vec<(String, String)> = lines[1..]
        .iter()
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    assert!(
        !headers
            .iter()
            .any(|(k, v)| k == "transfer-encoding" && v.contains("chunked")),
        "the store sends bodies with a Content-Length"
    );
    let length = headers
        .iter()
        .find(|(k, _)| k == "content-length")
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0);
    Some((
        head,
        Seen {
            method,
            target,
            headers,
        },
        length,
    ))
}

#[tokio::test]
async fn single_and_multipart_puts_send_no_checksum_header() {
    let Some(weed) = s3::available("single_and_multipart_puts_send_no_checksum_header") else {
        return;
    };
    let server = S3Server::start(&weed).await;
    let (port, seen) = recording_proxy(server.port()).await;
    let mut config = server.config("proxy");
    config.endpoint = Some(format!("http://127.0.0.1:{port}"));
    let archive = geolb::archive::Archive::open(&config).unwrap();

    let small = Bytes::from(vec![b's'; 1024]);
    let large: Bytes = (0..(6 << 20) + 123)
        .map(|i| (i % 251) as u8)
        .collect::<Vec<u8>>()
        .into();
    with_timeout(
        T,
        archive.put("proxy/small.bin", small.clone(), "application/gzip"),
    )
    .await
    .unwrap();
    with_timeout(
        T,
        archive.put("proxy/large.bin", large.clone(), "application/gzip"),
    )
    .await
    .unwrap();
    assert_eq!(
        with_timeout(T, archive.get("proxy/small.bin"))
            .await
            .unwrap(),
        small
    );
    assert_eq!(
        with_timeout(T, archive.get("proxy/large.bin"))
            .await
            .unwrap(),
        large
    );
    let listed = with_timeout(T, archive.list("proxy/")).await.unwrap();
    let sizes: Vec<u64> = listed.iter().map(|(_, size)| *size).collect();
    assert_eq!(listed.len(), 2, "{listed:?}");
    assert!(
        sizes.contains(&1024) && sizes.contains(&(large.len() as u64)),
        "{listed:?}"
    );

    let seen = seen.lock().unwrap().clone();
    let has = |method: &str, part: &str| {
        seen.iter()
            .any(|s| s.method == method && s.target.contains(part))
    };
    assert!(
        seen.iter()
            .any(|s| s.method == "PUT" && s.target == format!("/{BUCKET}/proxy/small.bin")),
        "{seen:#?}"
    );
    assert!(
        has("POST", "uploads"),
        "a multipart upload begins: {seen:#?}"
    );
    assert!(
        has("PUT", "partNumber=2"),
        "the 6 MiB object goes up in two parts: {seen:#?}"
    );
    assert!(has("POST", "uploadId="), "and is completed: {seen:#?}");
    for s in &seen {
        assert!(
            s.target.starts_with(&format!("/{BUCKET}")),
            "path-style: {s:?}"
        );
        let host = s
            .headers
            .iter()
            .find(|(k, _)| k == "host")
            .map(|(_, v)| v.as_str());
        assert_eq!(
            host,
            Some(format!("127.0.0.1:{port}").as_str()),
            "the bucket is not in the host: {s:?}"
        );
        for (name, _) in &s.headers {
            assert!(
                !name.starts_with("x-amz-checksum") && name != "x-amz-sdk-checksum-algorithm",
                "{} {} sent {name}",
                s.method,
                s.target
            );
        }
    }
    assert!(seen.len() >= 7, "every request was seen: {seen:#?}");
}
