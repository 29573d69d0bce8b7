//! The session task: owns the socket, frames JSON-RPC messages, matches replies
//! to requests, answers the server's `echo`, and routes monitor updates.
//!
//! OVSDB sends a plain stream of JSON texts with no delimiter, so incoming bytes
//! are accumulated and parsed with serde_json's streaming deserializer.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use serde::Serialize;
use serde_json::Value as Json;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::{mpsc, oneshot};
use tracing::{debug, trace, warn};

/// How a request ended when it did not get a `result`.
#[derive(Debug)]
pub(crate) enum Failure {
    /// The server's JSON-RPC `error` member.
    Rpc(Json),
    /// The session ended; the reason.
    Closed(String),
}

pub(crate) type Reply = Result<Json, Failure>;

/// What a [`crate::Client`] asks of the session task.
pub(crate) enum Command {
    /// Send a request; deliver the reply on `reply` (`None`: discard it).
    Request {
        method: &'static str,
        params: Json,
        reply: Option<oneshot::Sender<Reply>>,
    },
    /// Route `update`/`update2`/`update3` notifications for `monitor` (its JSON text).
    Subscribe {
        monitor: String,
        updates: mpsc::UnboundedSender<Json>,
    },
    /// Stop routing for `monitor` and send `monitor_cancel` with `id`.
    Cancel { monitor: String, id: Json },
}

/// The session with the server: a future that must be polled (e.g. `tokio::spawn`ed)
/// for any [`crate::Client`] request to make progress. It finishes when the server
/// closes the session or every `Client` handle is dropped.
pub struct Connection {
    task: Pin<Box<dyn Future<Output = ()> + Send>>,
}

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connection").finish_non_exhaustive()
    }
}

impl Future for Connection {
    type Output = ();
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        self.task.as_mut().poll(cx)
    }
}

impl Connection {
    pub(crate) fn new<R, W>(
        endpoint: String,
        reader: R,
        writer: W,
        commands: mpsc::UnboundedReceiver<Command>,
    ) -> Connection
    where
        R: AsyncRead + Unpin + Send + 'static,
        W: AsyncWrite + Unpin + Send + 'static,
    {
        let session = Session {
            endpoint,
            writer,
            pending: HashMap::new(),
            subscriptions: HashMap::new(),
            next_id: 0,
            out: Vec::with_capacity(4096),
        };
        Connection {
            task: Box::pin(session.run(reader, commands)),
        }
    }
}

#[derive(Serialize)]
struct OutRequest<'a> {
    method: &'a str,
    params: &'a Json,
    id: u64,
}

#[derive(Serialize)]
struct OutReply<'a> {
    id: &'a Json,
    result: &'a Json,
    error: &'a Json,
}

struct Session<W> {
    endpoint: String,
    writer: W,
    pending: HashMap<u64, Option<oneshot::Sender<Reply>>>,
    subscriptions: HashMap<String, mpsc::UnboundedSender<Json>>,
    next_id: u64,
    out: Vec<u8>,
}

impl<W: AsyncWrite + Unpin> Session<W> {
    async fn run<R: AsyncRead + Unpin>(
        mut self,
        mut reader: R,
        mut commands: mpsc::UnboundedReceiver<Command>,
    ) {
        let mut inbuf: Vec<u8> = Vec::with_capacity(16 * 1024);
        let mut chunk = vec![0u8; 16 * 1024];
        let mut clients_gone = false;
        let reason = loop {
            tokio::select! {
                cmd = commands.recv(), if !clients_gone => match cmd {
                    Some(cmd) => {
                        if let Err(reason) = self.command(cmd).await {
                            break reason;
                        }
                    }
                    None => {
                        clients_gone = true;
                        if self.pending.is_empty() {
                            break "all client handles dropped".to_string();
                        }
                    }
                },
                read = reader.read(&mut chunk) => match read {
                    Ok(0) => break "the server closed the connection".to_string(),
                    Err(e) => break format!("reading from the socket failed: {e}"),
                    Ok(n) => {
                        inbuf.extend_from_slice(chunk.get(..n).unwrap_or_default());
                        if let Err(reason) = self.incoming(&mut inbuf).await {
                            break reason;
                        }
                        if clients_gone && self.pending.is_empty() {
                            break "all client handles dropped".to_string();
                        }
                    }
                },
            }
        };
        debug!(endpoint = %self.endpoint, %reason, "OVSDB session ended");
        for (_, reply) in self.pending.drain() {
            if let Some(reply) = reply {
                let _ = reply.send(Err(Failure::Closed(reason.clone())));
            }
        }
    }

    async fn command(&mut self, cmd: Command) -> Result<(), String> {
        match cmd {
            Command::Request {
                method,
                params,
                reply,
            } => self.request(method, &params, reply).await,
            Command::Subscribe { monitor, updates } => {
                self.subscriptions.insert(monitor, updates);
                Ok(())
            }
            Command::Cancel { monitor, id } => {
                if self.subscriptions.remove(&monitor).is_some() {
                    let params = Json::Array(vec![id]);
                    self.request("monitor_cancel", &params, None).await
                } else {
                    Ok(())
                }
            }
        }
    }

    async fn request(
        &mut self,
        method: &'static str,
        params: &Json,
        reply: Option<oneshot::Sender<Reply>>,
    ) -> Result<(), String> {
        if reply.as_ref().is_some_and(|r| r.is_closed()) {
            return Ok(());
        }
        self.next_id = self.next_id.wrapping_add(1);
        let id = self.next_id;
        self.out.clear();
        serde_json::to_writer(&mut self.out, &OutRequest { method, params, id })
            .map_err(|e| format!("encoding {method} failed: {e}"))?;
        trace!(endpoint = %self.endpoint, id, method, "OVSDB request");
        self.pending.insert(id, reply);
        self.flush().await
    }

    async fn flush(&mut self) -> Result<(), String> {
        self.writer
            .write_all(&self.out)
            .await
            .map_err(|e| format!("writing to the socket failed: {e}"))
    }

    async fn incoming(&mut self, inbuf: &mut Vec<u8>) -> Result<(), String> {
        let mut messages = Vec::new();
        let mut stream = serde_json::Deserializer::from_slice(inbuf).into_iter::<Json>();
        loop {
            match stream.next() {
                Some(Ok(msg)) => messages.push(msg),
                Some(Err(e)) if !e.is_eof() => return Err(format!("the server sent invalid JSON: {e}")),
                // The end, or a message not complete yet: it starts at `byte_offset`.
                _ => break,
            }
        }
        let consumed = stream.byte_offset();
        inbuf.drain(..consumed);
        for msg in messages {
            self.dispatch(msg).await?;
        }
        Ok(())
    }

    async fn dispatch(&mut self, mut msg: Json) -> Result<(), String> {
        let Some(obj) = msg.as_object_mut() else {
            return Err("the server sent a JSON text that is not an object".to_string());
        };
        let id = obj.remove("id").unwrap_or(Json::Null);
        if let Some(method) = obj.get("method").and_then(Json::as_str).map(str::to_string) {
            let params = obj.remove("params").unwrap_or(Json::Null);
            return self.server_message(&method, params, id).await;
        }
        let Some(num) = id.as_u64() else {
            warn!(endpoint = %self.endpoint, %id, "OVSDB reply with an id we never used, ignored");
            return Ok(());
        };
        let Some(waiter) = self.pending.remove(&num) else {
            warn!(endpoint = %self.endpoint, id = num, "OVSDB reply to no pending request, ignored");
            return Ok(());
        };
        let error = obj.remove("error").unwrap_or(Json::Null);
        let reply = if error.is_null() {
            Ok(obj.remove("result").unwrap_or(Json::Null))
        } else {
            Err(Failure::Rpc(error))
        };
        if let Some(waiter) = waiter {
            let _ = waiter.send(reply);
        }
        Ok(())
    }

    async fn server_message(&mut self, method: &str, params: Json, id: Json) -> Result<(), String> {
        if !id.is_null() {
            // A request from the server: only `echo` is defined (RFC 7047 §4.1.11).
            let (result, error) = if method == "echo" {
                (params, Json::Null)
            } else {
                (Json::Null, Json::from(format!("unknown method {method}")))
            };
            self.out.clear();
            serde_json::to_writer(
                &mut self.out,
                &OutReply {
                    id: &id,
                    result: &result,
                    error: &error,
                },
            )
            .map_err(|e| format!("encoding the echo reply failed: {e}"))?;
            return self.flush().await;
        }
        match method {
            "update" | "update2" | "update3" => {
                let key = params.get(0).map(Json::to_string).unwrap_or_default();
                if let Some(tx) = self.subscriptions.get(&key) {
                    if tx.send(params).is_err() {
                        self.subscriptions.remove(&key);
                    }
                }
            }
            other => debug!(endpoint = %self.endpoint, method = other, "OVSDB notification ignored"),
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_reply_split_across_reads_is_delivered_once_whole() {
        let mut session = Session {
            endpoint: "test".to_string(),
            writer: tokio::io::sink(),
            pending: HashMap::new(),
            subscriptions: HashMap::new(),
            next_id: 0,
            out: Vec::new(),
        };
        let (tx, mut rx) = oneshot::channel();
        session.pending.insert(7, Some(tx));
        let text = br#" {"id":7,"result":["ok"],"error":null} {"id":8,"res"#;
        let mut inbuf = text[..20].to_vec();
        session.incoming(&mut inbuf).await.unwrap();
        assert!(rx.try_recv().is_err(), "nothing before the message is whole");
        inbuf.extend_from_slice(&text[20..]);
        session.incoming(&mut inbuf).await.unwrap();
        assert_eq!(rx.await.unwrap().unwrap(), serde_json::json!(["ok"]));
        assert_eq!(inbuf, br#"{"id":8,"res"#, "the partial next message is kept");
        inbuf.extend_from_slice(br#"":]"#);
        assert!(
            session.incoming(&mut inbuf).await.is_err(),
            "invalid JSON ends the session"
        );
    }
}
