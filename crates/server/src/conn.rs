//! One client connection: read, parse every complete frame, route the batch, write once.
//!
//! The read buffer is the only copy of the client's bytes: the parser records argument spans
//! into it and commands read their arguments from it in place. Replies for the whole batch are
//! assembled into one output buffer and written with one write.

use std::os::fd::AsRawFd;
use std::rc::Rc;

use futures_lite::{AsyncReadExt, AsyncWriteExt};
use glommio::net::TcpStream;
use glommio::spawn_local;
use shardis_resp::parse::Parsed;
use shardis_resp::{Parser, ProtocolError, Reply};

use crate::client::Client;
use crate::connection::Flow;
use crate::route::Plan;
use crate::shard::Shard;

/// The read buffer's starting size, and how much room a read asks for at least.
const READ_CHUNK: usize = 16 * 1024;

/// Serves `stream` on `shard` in a task of its own.
pub fn spawn(shard: Rc<Shard>, stream: TcpStream) {
    spawn_local(async move { serve(shard, stream).await }).detach();
}

async fn serve(shard: Rc<Shard>, mut stream: TcpStream) {
    let (needs_auth, maxclients) = {
        let config = shard.config.borrow();
        (!config.requirepass.is_empty(), config.maxclients)
    };
    shard
        .counters
        .connections
        .set(shard.counters.connections.get() + 1);
    // The acceptor spreads connections evenly, so each shard takes its share of the limit.
    let share = maxclients.div_ceil(shard.count as u64);
    if shard.clients.borrow().len() as u64 >= share || shard.stopping() {
        shard
            .counters
            .rejected
            .set(shard.counters.rejected.get() + 1);
        let _ = stream
            .write_all(b"-ERR max number of clients reached\r\n")
            .await;
        return;
    }
    let _ = stream.set_nodelay(true);
    let addr =
        |a: Option<std::net::SocketAddr>| a.map_or_else(|| "?:0".to_owned(), |a| a.to_string());
    let client = Rc::new(Client::new(
        shard.new_client_id(),
        addr(stream.peer_addr().ok()),
        addr(stream.local_addr().ok()),
        stream.as_raw_fd(),
        needs_auth,
    ));
    shard.clients.borrow_mut().insert(client.id, client.clone());
    if let Err(err) = session(&shard, &client, &mut stream).await {
        tracing::debug!("client {} ({}): {err}", client.id, client.addr);
    }
    let _ = stream.close().await;
    shard.clients.borrow_mut().remove(&client.id);
    shard.client_gone();
}

/// Why a session ended early.
#[derive(Debug, thiserror::Error)]
enum SessionEnd {
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
    #[error("query buffer over the client-query-buffer-limit")]
    QueryBufferLimit,
    #[error("{0}")]
    Protocol(ProtocolError),
}

async fn session(
    shard: &Rc<Shard>,
    client: &Rc<Client>,
    stream: &mut TcpStream,
) -> Result<(), SessionEnd> {
    let mut buf = vec![0u8; READ_CHUNK];
    let mut filled = 0;
    let mut parser = Parser::new();
    let mut spans = Vec::new();
    let mut cmds = Vec::new();
    let mut out = Vec::with_capacity(READ_CHUNK);
    let mut need = 0;
    let mut plan = Plan::new(shard.clone());
    loop {
        // Make room: at least a chunk, or the whole of a large value the parser is waiting for.
        let want = filled + need.max(READ_CHUNK / 4);
        if buf.len() < want {
            let limit = shard.config.borrow().client_query_buffer_limit;
            if want as u64 > limit {
                return Err(SessionEnd::QueryBufferLimit);
            }
            buf.resize(want.max(buf.len() * 2).min(limit as usize + 1), 0);
        }
        let n = stream.read(&mut buf[filled..]).await?;
        if n == 0 || client.killed.get() {
            return Ok(());
        }
        filled += n;
        shard
            .counters
            .net_in
            .set(shard.counters.net_in.get() + n as u64);

        // Parse every complete frame in the buffer.
        let (limits, authenticated) = (
            shard.config.borrow().limits(),
            client.state.borrow().authenticated,
        );
        spans.clear();
        cmds.clear();
        let mut consumed = 0;
        let mut broken = None;
        need = 0;
        while consumed < filled {
            match parser.parse(
                &mut buf[..filled],
                consumed,
                &mut spans,
                &limits,
                authenticated,
            ) {
                Ok(Parsed::Command { argc, end }) => {
                    if argc > 0 {
                        cmds.push((spans.len() - argc, argc));
                    }
                    consumed = end;
                }
                Ok(Parsed::Incomplete { need: more }) => {
                    need = more;
                    break;
                }
                Err(err) => {
                    broken = Some(err);
                    break;
                }
            }
        }

        let flow = plan
            .run_batch(client, &buf[..filled], &spans, &cmds, &mut out)
            .await;
        if client.killed.get() {
            return Ok(());
        }
        if let Some(err) = &broken {
            let proto = client.state.borrow().proto;
            Reply::new(&mut out, proto).error(&format!("ERR {err}"));
        }
        if !out.is_empty() {
            if cmds.len() > 1 {
                // A pipelined batch's replies wait (one yield) until the other connections
                // that are ready have run their batches: the writes of a reactor turn then go
                // out together, as Redis writes every reply at the end of its event-loop
                // iteration, and a client reading many connections is woken once for them
                // rather than once per connection (that wake-up was a tenth of the CPU of a
                // scripted workload at depth). At pipeline 1 the yield costs more than it
                // saves, so a lone command is answered at once.
                futures_lite::future::yield_now().await;
            }
            stream.write_all(&out).await?;
            shard
                .counters
                .net_out
                .set(shard.counters.net_out.get() + out.len() as u64);
            out.clear();
            if out.capacity() > 4 * 1024 * 1024 {
                out = Vec::with_capacity(READ_CHUNK);
            }
        }
        if let Some(err) = broken {
            return Err(SessionEnd::Protocol(err));
        }
        if flow != Flow::Continue {
            return Ok(());
        }
        // Keep the unparsed tail (a frame that arrived in part) at the front.
        buf.copy_within(consumed..filled, 0);
        filled -= consumed;
        if buf.len() > 4 * READ_CHUNK && filled < READ_CHUNK && !parser.in_frame() {
            // A large value has been served; give the memory back.
            buf.truncate(READ_CHUNK);
            buf.shrink_to_fit();
        }
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;
    use std::net::Shutdown;
    use std::time::Duration;

    use futures_lite::AsyncReadExt;
    use glommio::net::TcpListener;
    use glommio::{LocalExecutorBuilder, Placement};

    /// The reads a connection relies on, through the vendored reactor's multishot read poll
    /// (which fires when data arrives, not while it waits): an empty read leaves the
    /// announcement of waiting data to the next read, every byte arrives, and a read after the
    /// end answers the end again at once. A read that waited for a completion that never
    /// comes fails with the timeout instead of hanging the test.
    #[test]
    fn stream_reads_see_every_byte_and_the_end_again() {
        let executor = LocalExecutorBuilder::new(Placement::Unbound)
            .make()
            .expect("an executor (io_uring)");
        executor.run(async {
            let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
            let addr = listener.local_addr().expect("address");
            let client = std::thread::spawn(move || {
                let mut socket = std::net::TcpStream::connect(addr).expect("connect");
                socket.write_all(b"abc").expect("write");
                socket.shutdown(Shutdown::Write).expect("shutdown");
            });
            let mut stream = listener.accept().await.expect("accept");
            stream
                .set_read_timeout(Some(Duration::from_secs(10)))
                .expect("timeout");
            // Once the bytes are surely there (the client is done): the empty read must not
            // take their news.
            client.join().expect("client");
            assert_eq!(stream.read(&mut []).await.expect("empty read"), 0);
            let mut got = Vec::new();
            let mut buf = [0; 2];
            loop {
                let n = stream.read(&mut buf).await.expect("read");
                if n == 0 {
                    break;
                }
                got.extend_from_slice(&buf[..n]);
            }
            assert_eq!(got, b"abc");
            assert_eq!(stream.read(&mut buf).await.expect("read after the end"), 0);
        });
    }
}
