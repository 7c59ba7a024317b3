//! The learn port (legacy `m_rslLearnPort`, §4.5, §4.12): raw messages, no packet framing.
//! A client connects and writes one message; the server answers on the same connection
//! and closes it. `FetchVotes(d)` gets the raw log from the record of `d` to the end of
//! every later file, `FetchCheckpoint(c)` the bytes of `<c>.codex`, `StatusQuery` one
//! StatusResponse. There is no error message on this wire: a server that cannot or will
//! not answer closes the connection having written nothing.
//!
//! [`LearnServer`]: one accept thread and one thread per connection, at most
//! `max_connections` of them; a connection beyond that is closed at once and counted. A
//! client must send its request within `receive_timeout` of connecting (one deadline for
//! the whole message, so a trickling client is cut off too), and every write of the
//! answer must progress within `send_timeout`. Log and checkpoint bytes come straight
//! from the data directory. Status comes from the runtime, which owns the replica: each
//! StatusQuery becomes a [`StatusRequest`] on a bounded channel and waits (up to
//! `receive_timeout`) for the answer. A request/reply channel rather than a shared
//! snapshot: the answer echoes the query and reports the time since the last vote at the
//! moment it is asked, the replica stays single-owner with no lock, and nothing is
//! copied on the runtime's hot path for a query that comes once per checkpoint copy.
//!
//! [`LearnClient`]: the learner's side. [`LearnClient::fetch_votes`] reads the stream
//! with the non-tolerant §5.2 rules and fails with the offset and the broken rule, never
//! a panic; [`learned_votes`] applies the proof rule to what was fetched.

pub use super::learn_stream::BadRecord;

use super::learn_stream::{read_message, send_votes, ReadError, RecordReader};
use super::tcp::{bind, connect_from, source_addr};
use super::tls::{Tls, TlsStream};
use super::{inbox, member_addr};
use crate::paxos::{chosen_votes, Ballot, Body, Decree, Member, MemberId, Message, Record, Status, Vote};
use crate::wire::{decode, EncodeError, Header, Limits, Version, WireBody, WireMessage};
use bytes::Bytes;
use crossbeam_channel::{bounded, select, Receiver, Sender, TryRecvError};
use std::fmt;
use std::fs::File;
use std::io::{self, BufReader, BufWriter, Read, Write};
use std::net::{IpAddr, Ipv4Addr, Shutdown, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

/// The settings of one replica's learn-port server.
#[derive(Clone, Debug)]
pub struct LearnConfig {
    /// This replica: its id (sender of StatusResponses), IP and `learn_port` (0 = any free
    /// port, for tests; see [`LearnServer::listen_addr`]).
    pub me: Member,
    /// The version StatusResponses are encoded in.
    pub version: Version,
    /// Where the `<decree>.log` and `<decree>.codex` files are.
    pub data_dir: PathBuf,
    /// Largest request accepted (`m_maxMessageSizeMB`), also bounding log records served.
    pub limits: Limits,
    /// Longest a write of the answer may block (`m_sendTimeoutSec`).
    pub send_timeout: Duration,
    /// The whole request must arrive within this of the connect, and a status answer
    /// from the runtime within this of the request (`m_receiveTimeoutSec`).
    pub receive_timeout: Duration,
    /// Connections served at once; more are closed unanswered.
    pub max_connections: usize,
    /// Listen on every address (`EnableListenOnAllIPs`); otherwise on this member's IP.
    pub listen_on_all_ips: bool,
    /// Counts the journal reads that serve FetchVotes (legacy `RSLStats` log reads).
    pub log_reads: Arc<LogReads>,
    /// TLS on every connection, as on the Paxos port; none by default.
    pub tls: Option<Arc<Tls>>,
}

/// Journal reads serving learners, for legacy `RSLStats`: cumulative, shared with the
/// runtime that reports them.
#[derive(Debug, Default)]
pub struct LogReads {
    pub reads: AtomicU64,
    pub bytes: AtomicU64,
    pub micros: AtomicU64,
    pub max_micros: AtomicU64,
}

impl LearnConfig {
    /// Legacy's 5 s timeouts and 100 MiB messages; 16 connections at once (legacy has no
    /// bound: a thread per connection).
    pub fn new(me: Member, version: Version, data_dir: PathBuf) -> Self {
        Self {
            me,
            version,
            data_dir,
            limits: Limits::default(),
            send_timeout: Duration::from_secs(5),
            receive_timeout: Duration::from_secs(5),
            max_connections: 16,
            listen_on_all_ips: false,
            log_reads: Arc::default(),
            tls: None,
        }
    }
}

/// A StatusQuery that arrived on the learn port, for the runtime to answer. Dropping it
/// unanswered closes the connection without a response (legacy does that while the
/// primary relinquishes).
#[derive(Debug)]
pub struct StatusRequest {
    /// The query's decree and ballot, to echo in [`Status::query_decree`] and
    /// [`Status::query_ballot`].
    pub decree: Decree,
    pub ballot: Ballot,
    reply: Sender<(u32, Status)>,
}

impl StatusRequest {
    /// Sends `status` as the StatusResponse of `configuration` (ignored if the client is
    /// gone or timed out).
    pub fn respond(self, configuration: u32, status: Status) {
        let _ = self.reply.send((configuration, status));
    }
}

/// A snapshot of a learn server's counters.
#[derive(Clone, Copy, PartialEq, Eq, Default, Debug)]
pub struct LearnStats {
    /// Connections accepted (including those closed as busy).
    pub accepted: u64,
    /// Connections closed unanswered because `max_connections` were being served.
    pub busy: u64,
    /// Clients that did not send their request, or runtimes that did not answer a
    /// status query, in time.
    pub timed_out: u64,
    /// Requests that were malformed or not FetchVotes, FetchCheckpoint or StatusQuery.
    pub bad_requests: u64,
    /// Connections refused in the TLS handshake (certificate not pinned, expired, none).
    pub tls: u64,
}

#[derive(Default)]
struct Counters {
    accepted: AtomicU64,
    busy: AtomicU64,
    timed_out: AtomicU64,
    bad_requests: AtomicU64,
    tls: AtomicU64,
}

fn bump(counter: &AtomicU64) {
    counter.fetch_add(1, Ordering::Relaxed);
}

/// Why [`LearnServer::start`] failed.
#[derive(Debug)]
pub enum LearnStartError {
    /// A zero timeout or connection bound.
    Invalid(&'static str),
    /// The listener could not be bound.
    Listen(io::Error),
    /// The accept thread could not be started.
    Thread(io::Error),
}

impl fmt::Display for LearnStartError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Invalid(why) => write!(f, "invalid learn-port setting: {why}"),
            Self::Listen(e) => write!(f, "cannot listen on the learn port: {e}"),
            Self::Thread(e) => write!(f, "cannot start the learn-port thread: {e}"),
        }
    }
}

impl std::error::Error for LearnStartError {}

/// One replica's learn port. Dropping it stops it.
pub struct LearnServer {
    shared: Arc<Shared>,
    status_requests: inbox::Receiver<StatusRequest>,
    /// Dropped to stop: every thread then sees `Shared::stop` disconnected.
    stop: Option<Sender<()>>,
    accept: Option<JoinHandle<()>>,
    listen_addr: SocketAddr,
}

struct Shared {
    config: LearnConfig,
    counters: Counters,
    status: inbox::Sender<StatusRequest>,
    stop: Receiver<()>,
}

impl Shared {
    fn stopped(&self) -> bool {
        matches!(self.stop.try_recv(), Err(TryRecvError::Disconnected))
    }
}

impl LearnServer {
    /// Binds the learn port and starts serving.
    pub fn start(config: LearnConfig) -> Result<Self, LearnStartError> {
        let checks = [
            (config.send_timeout.is_zero(), "send_timeout is zero"),
            (config.receive_timeout.is_zero(), "receive_timeout is zero"),
            (config.max_connections == 0, "max_connections is zero"),
        ];
        if let Some((_, why)) = checks.into_iter().find(|(bad, _)| *bad) {
            return Err(LearnStartError::Invalid(why));
        }
        let ip = if config.listen_on_all_ips { Ipv4Addr::UNSPECIFIED } else { member_addr(config.me.ip) };
        let listener = bind(SocketAddr::new(IpAddr::V4(ip), config.me.learn_port));
        let listener = listener.map_err(LearnStartError::Listen)?;
        let listen_addr = listener.local_addr().map_err(LearnStartError::Listen)?;
        // Each connection has at most one query outstanding.
        let (status, status_requests) = inbox::bounded(config.max_connections);
        let (stop_tx, stop) = bounded(0);
        let shared = Arc::new(Shared { config, counters: Counters::default(), status, stop });
        let accepting = Arc::clone(&shared);
        let accept = thread::Builder::new()
            .name("rsl-learn-listen".to_owned())
            .spawn(move || accept_loop(&accepting, &listener))
            .map_err(LearnStartError::Thread)?;
        Ok(Self { shared, status_requests, stop: Some(stop_tx), accept: Some(accept), listen_addr })
    }

    /// The address actually bound (the port the kernel chose when `learn_port` was 0).
    pub fn listen_addr(&self) -> SocketAddr {
        self.listen_addr
    }

    /// StatusQueries to answer; the runtime drains this with its other inputs.
    pub fn status_requests(&self) -> &inbox::Receiver<StatusRequest> {
        &self.status_requests
    }

    /// A client of other replicas' learn ports, with this server's TLS settings.
    pub fn client(&self, version: Version) -> LearnClient {
        let config = &self.shared.config;
        let source = source_addr(&config.me, config.listen_on_all_ips);
        LearnClient { tls: config.tls.clone(), source, ..LearnClient::new(config.me.id.clone(), version) }
    }

    pub fn stats(&self) -> LearnStats {
        let c = &self.shared.counters;
        let load = |a: &AtomicU64| a.load(Ordering::Relaxed);
        LearnStats {
            accepted: load(&c.accepted),
            busy: load(&c.busy),
            timed_out: load(&c.timed_out),
            bad_requests: load(&c.bad_requests),
            tls: load(&c.tls),
        }
    }

    /// Stops accepting and joins every thread. A connection ends at its next record or
    /// chunk, or when its blocked read or write times out.
    pub fn stop(&mut self) {
        if self.stop.take().is_none() {
            return;
        }
        // Wake the listener from `accept`; it sees the stop and exits.
        let mut wake = self.listen_addr;
        if wake.ip().is_unspecified() {
            wake.set_ip(IpAddr::V4(Ipv4Addr::LOCALHOST));
        }
        let _ = TcpStream::connect_timeout(&wake, self.shared.config.send_timeout);
        if let Some(accept) = self.accept.take() {
            let _ = accept.join();
        }
    }
}

impl Drop for LearnServer {
    fn drop(&mut self) {
        self.stop();
    }
}

fn accept_loop(shared: &Arc<Shared>, listener: &TcpListener) {
    let mut connections: Vec<JoinHandle<()>> = Vec::new();
    for stream in listener.incoming() {
        if shared.stopped() {
            break;
        }
        let Ok(stream) = stream else {
            // Out of descriptors or similar: do not spin.
            if shared.stop.recv_timeout(Duration::from_millis(15)).is_err_and(|e| e.is_disconnected()) {
                break;
            }
            continue;
        };
        bump(&shared.counters.accepted);
        connections.retain(|c| !c.is_finished());
        if connections.len() >= shared.config.max_connections {
            bump(&shared.counters.busy);
            continue; // dropping the stream closes it
        }
        let serving = Arc::clone(shared);
        let spawned = thread::Builder::new().name("rsl-learn-serve".to_owned()).spawn(move || {
            serve(&serving, &stream);
            let _ = stream.shutdown(Shutdown::Both);
        });
        // A connection that cannot get a thread is dropped, closing it.
        if let Ok(thread) = spawned {
            connections.push(thread);
        }
    }
    for connection in connections {
        let _ = connection.join();
    }
}

/// Reads the one request and answers it.
fn serve(shared: &Shared, stream: &TcpStream) {
    let config = &shared.config;
    let deadline = Instant::now() + config.receive_timeout;
    let Ok(mut io) = Io::open(stream, config.tls.as_deref(), None) else {
        let from = stream.peer_addr().map_or_else(|_| "?".to_owned(), |a| a.to_string());
        tracing::warn!("learn port: refused a TLS connection from {from}");
        bump(&shared.counters.tls);
        return;
    };
    let request = match read_message(&mut Deadline { stream, inner: &mut io, deadline }, &config.limits) {
        Ok(Some(bytes)) => decode(&Bytes::from(bytes), &config.limits).ok(),
        Ok(None) | Err(ReadError::Bad(_)) => None,
        Err(ReadError::Io(e)) => {
            if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut) {
                bump(&shared.counters.timed_out);
                return;
            }
            None
        }
    };
    let Some(WireMessage { header, body }) = request else {
        bump(&shared.counters.bad_requests);
        return;
    };
    if stream.set_write_timeout(Some(config.send_timeout)).is_err() {
        return;
    }
    let mut out = BufWriter::with_capacity(1 << 16, io);
    let stopped = || shared.stopped();
    // A failed write means the client left or stalled; there is no one to tell.
    let _ = match body {
        WireBody::FetchVotes => {
            let started = Instant::now();
            let mut counted = Counted { inner: &mut out, bytes: 0 };
            let sent = send_votes(&config.data_dir, header.decree.0, &config.limits, &mut counted, &stopped);
            let (reads, micros) = (&config.log_reads, started.elapsed().as_micros() as u64);
            reads.reads.fetch_add(1, Ordering::Relaxed);
            reads.bytes.fetch_add(counted.bytes, Ordering::Relaxed);
            reads.micros.fetch_add(micros, Ordering::Relaxed);
            reads.max_micros.fetch_max(micros, Ordering::Relaxed);
            sent
        }
        WireBody::FetchCheckpoint => send_checkpoint(&config.data_dir, header.decree, &mut out, &stopped),
        WireBody::StatusQuery => send_status(shared, header, &mut out),
        _ => {
            bump(&shared.counters.bad_requests);
            Ok(())
        }
    }
    .and_then(|()| out.flush());
}

/// A writer that counts what passes through it.
struct Counted<'a, W> {
    inner: &'a mut W,
    bytes: u64,
}

impl<W: Write> Write for Counted<'_, W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.bytes += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// A read whose socket timeout is what is left until `deadline`.
struct Deadline<'a> {
    stream: &'a TcpStream,
    inner: &'a mut Io,
    deadline: Instant,
}

impl Read for Deadline<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let left = self.deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(io::ErrorKind::TimedOut.into());
        }
        self.stream.set_read_timeout(Some(left))?;
        self.inner.read(buf)
    }
}

/// A learn-port connection: the socket as it is, or through TLS.
enum Io {
    Plain(TcpStream),
    Tls(TlsStream),
}

impl Io {
    /// Runs the TLS handshake where configured (as the client of `server`, if given).
    fn open(stream: &TcpStream, tls: Option<&Tls>, server: Option<IpAddr>) -> io::Result<Self> {
        let Some(tls) = tls else { return Ok(Self::Plain(stream.try_clone()?)) };
        let sock = Arc::new(stream.try_clone()?);
        let conn = match server {
            Some(peer) => tls.connect(sock, peer)?,
            None => tls.accept(sock)?,
        };
        Ok(Self::Tls(Arc::new(conn).stream()))
    }
}

impl Read for Io {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Self::Plain(s) => s.read(buf),
            Self::Tls(s) => s.read(buf),
        }
    }
}

impl Write for Io {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Self::Plain(s) => s.write(buf),
            Self::Tls(s) => s.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// The bytes of `<decree>.codex`, or nothing if there is no such file.
fn send_checkpoint(
    dir: &Path,
    decree: Decree,
    out: &mut impl Write,
    stopped: &dyn Fn() -> bool,
) -> io::Result<()> {
    let mut file = match File::open(dir.join(format!("{}.codex", decree.0))) {
        Ok(file) => file,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    };
    let mut chunk = vec![0u8; 1 << 16];
    while !stopped() {
        match file.read(&mut chunk)? {
            0 => break,
            n => out.write_all(&chunk[..n])?,
        }
    }
    Ok(())
}

/// Asks the runtime for the status and writes it as one raw StatusResponse.
fn send_status(shared: &Shared, query: Header, out: &mut impl Write) -> io::Result<()> {
    let (reply, answer) = bounded(1);
    let request = StatusRequest { decree: query.decree, ballot: query.ballot, reply };
    if shared.status.try_send(request).is_err() {
        return Ok(()); // the runtime is stopped or far behind: silence
    }
    let (configuration, status) = select! {
        recv(answer) -> answer => match answer {
            Ok(answer) => answer,
            Err(_) => return Ok(()), // dropped unanswered
        },
        recv(shared.stop) -> _ => return Ok(()),
        default(shared.config.receive_timeout) => {
            bump(&shared.counters.timed_out);
            return Ok(());
        }
    };
    let config = &shared.config;
    let message =
        Message { from: config.me.id.clone(), configuration, body: Body::StatusResponse(Box::new(status)) };
    let bytes = WireMessage::from_core(&message, config.version).and_then(|m| m.to_bytes());
    out.write_all(&bytes.map_err(io::Error::other)?)
}

/// The learner's side of the learn port: who is asking, and how patiently.
#[derive(Clone, Debug)]
pub struct LearnClient {
    /// The requests' sender (legacy servers log it and ignore it).
    pub me: MemberId,
    /// The version requests are encoded in; answers are read in any version.
    pub version: Version,
    /// The configuration number requests carry (FetchCheckpoint always carries 1).
    pub configuration: u32,
    /// Largest message or log record accepted.
    pub limits: Limits,
    /// Connect timeout, and the longest the server may stay silent in the middle of an
    /// answer (not a bound on the whole transfer, which may be a large log).
    pub timeout: Duration,
    /// TLS, as the servers use it; none by default.
    pub tls: Option<Arc<Tls>>,
    /// The address to connect from (this member's, as on the Paxos port); the kernel's
    /// choice if none.
    pub source: Option<Ipv4Addr>,
}

/// Why a fetch failed. Nothing was changed: no records are returned, and a partly
/// fetched checkpoint file is removed.
#[derive(Debug)]
pub enum LearnError {
    /// The request cannot be encoded in the client's version.
    Encode(EncodeError),
    /// Connecting or sending the request failed.
    Connect(io::Error),
    /// Reading the answer failed (a timeout or a reset) at byte `offset` of it.
    Read { offset: u64, source: io::Error },
    /// The answer breaks the §5.2 rules (or is not a StatusResponse) at byte `offset`.
    Corrupt { offset: u64, why: BadRecord },
    /// The server closed the connection without answering (it does not have the
    /// checkpoint, or will not report its status).
    NothingServed,
    /// Writing the fetched checkpoint failed.
    Write(io::Error),
}

impl fmt::Display for LearnError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Encode(e) => write!(f, "cannot encode the request: {e}"),
            Self::Connect(e) => write!(f, "cannot send the request: {e}"),
            Self::Read { offset, source } => {
                write!(f, "reading the answer failed at byte {offset}: {source}")
            }
            Self::Corrupt { offset, why } => write!(f, "bad answer at byte {offset}: {why}"),
            Self::NothingServed => f.write_str("the server closed the connection without answering"),
            Self::Write(e) => write!(f, "cannot write the fetched checkpoint: {e}"),
        }
    }
}

impl std::error::Error for LearnError {}

impl LearnClient {
    /// Legacy's 5 s timeout and 100 MiB messages, configuration 1.
    pub fn new(me: MemberId, version: Version) -> Self {
        let timeout = Duration::from_secs(5);
        Self { me, version, configuration: 1, limits: Limits::default(), timeout, tls: None, source: None }
    }

    /// The records of `addr`'s log from the record of decree `first` on (empty if the
    /// server does not have `first`). ReconfigurationDecisions are read and verified but
    /// not returned: the core has no record for them yet.
    pub fn fetch_votes(&self, addr: SocketAddr, first: Decree) -> Result<Vec<Record>, LearnError> {
        let stream =
            self.request(addr, WireBody::FetchVotes, first, Ballot::default(), self.configuration)?;
        read_votes(BufReader::with_capacity(1 << 16, stream), &self.limits)
    }

    /// `addr`'s StatusResponse to a StatusQuery carrying our latest vote's decree and
    /// ballot (the server echoes them).
    pub fn fetch_status(
        &self,
        addr: SocketAddr,
        decree: Decree,
        ballot: Ballot,
    ) -> Result<Status, LearnError> {
        let mut stream = self.request(addr, WireBody::StatusQuery, decree, ballot, self.configuration)?;
        let bytes = match read_message(&mut stream, &self.limits) {
            Ok(Some(bytes)) => bytes,
            Ok(None) => return Err(LearnError::NothingServed),
            Err(ReadError::Io(source)) => return Err(LearnError::Read { offset: 0, source }),
            Err(ReadError::Bad(why)) => return Err(LearnError::Corrupt { offset: 0, why }),
        };
        let corrupt = |why| LearnError::Corrupt { offset: 0, why };
        let wire = decode(&Bytes::from(bytes), &self.limits).map_err(|e| corrupt(BadRecord::Message(e)))?;
        let id = wire.body.id();
        match wire.into_core() {
            Some(Message { body: Body::StatusResponse(status), .. }) => Ok(*status),
            _ => Err(corrupt(BadRecord::MessageId(id as u16))),
        }
    }

    /// Copies `addr`'s `<decree>.codex` to `dest` (created or truncated, then synced);
    /// returns its size. On any failure `dest` is removed.
    pub fn fetch_checkpoint(&self, addr: SocketAddr, decree: Decree, dest: &Path) -> Result<u64, LearnError> {
        // Legacy's FetchCheckpoint carries configuration 1 and an empty ballot.
        let mut stream = self.request(addr, WireBody::FetchCheckpoint, decree, Ballot::default(), 1)?;
        let mut file = File::create(dest).map_err(LearnError::Write)?;
        let copied = copy_answer(&mut stream, &mut file);
        if !matches!(copied, Ok(n) if n > 0) {
            drop(file);
            let _ = std::fs::remove_file(dest);
        }
        match copied {
            Ok(0) => Err(LearnError::NothingServed),
            other => other,
        }
    }

    /// Connects and writes one raw request.
    fn request(
        &self,
        addr: SocketAddr,
        body: WireBody,
        decree: Decree,
        ballot: Ballot,
        configuration: u32,
    ) -> Result<Io, LearnError> {
        let header = Header {
            version: self.version,
            from: self.me.clone(),
            decree,
            configuration,
            ballot,
            payload: 0,
        };
        let bytes = WireMessage { header, body }.to_bytes().map_err(LearnError::Encode)?;
        let stream = connect_from(self.source, addr, self.timeout).map_err(LearnError::Connect)?;
        let mut io = stream
            .set_nodelay(true)
            .and_then(|()| stream.set_read_timeout(Some(self.timeout)))
            .and_then(|()| stream.set_write_timeout(Some(self.timeout)))
            .and_then(|()| Io::open(&stream, self.tls.as_deref(), Some(addr.ip())))
            .map_err(LearnError::Connect)?;
        io.write_all(&bytes).map_err(LearnError::Connect)?;
        Ok(io)
    }
}

/// Copies the rest of the answer into `file` and syncs it; the bytes copied.
fn copy_answer(stream: &mut impl Read, file: &mut File) -> Result<u64, LearnError> {
    let mut chunk = vec![0u8; 1 << 16];
    let mut offset = 0u64;
    loop {
        let n = match stream.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(source) => return Err(LearnError::Read { offset, source }),
        };
        file.write_all(&chunk[..n]).map_err(LearnError::Write)?;
        offset += n as u64;
    }
    if offset > 0 {
        file.sync_all().map_err(LearnError::Write)?;
    }
    Ok(offset)
}

/// Reads a FetchVotes answer — log records, as in a `.log` file — to its end: the
/// untrusted side of the learn port (a refused record is an error naming its offset).
pub fn read_votes(stream: impl Read, limits: &Limits) -> Result<Vec<Record>, LearnError> {
    let mut reader = RecordReader::new(stream, *limits);
    let mut records = Vec::new();
    loop {
        let offset = reader.offset();
        let record = match reader.next_record() {
            Ok(Some(record)) => record,
            Ok(None) => return Ok(records),
            Err(ReadError::Io(source)) => return Err(LearnError::Read { offset, source }),
            Err(ReadError::Bad(why)) => return Err(LearnError::Corrupt { offset, why }),
        };
        let message = Bytes::from(record.bytes).slice(..record.len);
        let wire = decode(&message, limits)
            .map_err(|e| LearnError::Corrupt { offset, why: BadRecord::Message(e) })?;
        match wire.body {
            // A logged Prepare stands for a promise (as in the file journal).
            WireBody::Prepare { .. } => records.push(Record::Promise(wire.header.ballot)),
            WireBody::Vote(_) => match wire.into_core() {
                Some(Message { body: Body::Vote(vote), .. }) => records.push(Record::Vote(vote)),
                _ => unreachable!("a Vote message converts to a core vote"),
            },
            _ => {} // ReconfigurationDecision: the reader admits ids 1, 3 and 10 only
        }
    }
}

/// The votes `records` (a FetchVotes answer for `first`) prove chosen: contiguous from
/// `first`, in decree order, possibly none (`paxos::chosen_votes`, the rule of
/// docs/protocol.md §Learning).
pub fn learned_votes(records: &[Record], first: Decree) -> Vec<Arc<Vote>> {
    let after = Decree(first.0.saturating_sub(1));
    let votes = chosen_votes(records, after);
    debug_assert!(votes.iter().zip(after.next().0..).all(|(v, d)| v.decree.0 == d), "contiguous");
    votes
}
