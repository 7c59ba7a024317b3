//! The verbs under the RDMA medium (cargo feature `rdma`, on `sideway`): the device, port
//! and GID the configuration names, a registered buffer per link, and a reliable-connected
//! queue pair per link, set up over TCP on the Paxos ports and set up again whenever it or
//! its TCP connection fails.
//!
//! Set-up: the member with the smaller id connects to the other's Paxos port. Each side
//! creates its queue pair (INIT), they exchange a hello (below), each moves its queue pair
//! to RTR and RTS, and the connecting side sends one byte when it is ready; only then do
//! both take it into use, so neither writes to a queue pair not yet able to receive. The
//! TCP connection stays open as the pair's liveness: when it closes, the link goes down
//! and the connecting side starts over.
//!
//! ```text
//! hello: "RSLRDMA1" | u32 qpn | u32 psn | u16 lid | gid[16] | u64 buffer address | u32 rkey
//!        | u64 ring bytes | u16 id length | id          (little-endian)
//! ```

use super::{Link, Verbs};
use crate::paxos::{Member, MemberId};
use crate::transport::tcp::{bind, connect_from, listen_addr, source_addr};
use crate::transport::{member_addr, member_socket, RdmaConfig, RingTransport, StartError, TransportConfig};
use crossbeam_channel::{bounded, Receiver, Sender};
use sideway::ibverbs::address::{AddressHandleAttribute, Gid};
use sideway::ibverbs::completion::{
    BasicCompletionQueue, PollCompletionQueueError, WorkCompletionOperationType, WorkCompletionStatus,
};
use sideway::ibverbs::device::{DeviceInfo, DeviceList};
use sideway::ibverbs::device_context::{DeviceContext, Mtu};
use sideway::ibverbs::memory_region::MemoryRegion;
use sideway::ibverbs::protection_domain::ProtectionDomain;
use sideway::ibverbs::queue_pair::{
    GenericQueuePair, PostSendGuard, QueuePair, QueuePairAttribute, QueuePairState, SetInlineData,
    SetScatterGatherEntry, WorkRequestFlags,
};
use sideway::ibverbs::AccessFlags;
use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::net::{IpAddr, Ipv4Addr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

const SEND_DEPTH: u32 = 1024;
const RECV_DEPTH: u32 = 1024;
/// One send in this many asks for a completion, which frees the send queue up to it.
const SIGNAL_EVERY: u32 = 64;
/// Writes this short carry their bytes in the request: the NIC never reads them later.
const INLINE: usize = 64;
const MAGIC: &[u8; 8] = b"RSLRDMA1";
/// How often waiting threads look at the stop flag.
const TICK: Duration = Duration::from_millis(50);

/// An error with its causes (sideway's errors keep the OS error as a source).
fn why(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        text = format!("{text}: {c}");
        cause = c.source();
    }
    text
}

/// The opened device: one protection domain for every link.
struct Device {
    pd: Arc<ProtectionDomain>,
    ctx: Arc<DeviceContext>,
    port: u8,
    gid_index: u8,
    gid: Gid,
    lid: u16,
    mtu: Mtu,
}

impl Device {
    fn open(rdma: &RdmaConfig) -> Result<Self, String> {
        let instead = "configure the tcp or shm transport";
        let list = DeviceList::new().map_err(|e| format!("no RDMA device: {}; {instead}", why(&e)))?;
        let names: Vec<String> = list.iter().map(|d| d.name()).collect();
        let device = match &rdma.device {
            Some(name) => list
                .iter()
                .find(|d| d.name() == *name)
                .ok_or_else(|| format!("no RDMA device {name} (there are {names:?}); {instead}"))?,
            None => list.iter().next().ok_or_else(|| format!("no RDMA device found; {instead}"))?,
        };
        let name = device.name();
        let ctx = device.open().map_err(|e| format!("cannot open RDMA device {name}: {}", why(&e)))?;
        let port =
            ctx.query_port(rdma.port).map_err(|e| format!("{name} port {}: {}", rdma.port, why(&e)))?;
        let gid = ctx
            .query_gid(rdma.port, rdma.gid_index.into())
            .map_err(|e| format!("{name} port {} GID {}: {}", rdma.port, rdma.gid_index, why(&e)))?;
        let pd = ctx
            .alloc_pd()
            .map_err(|e| format!("{name}: cannot allocate a protection domain: {}", why(&e)))?;
        Ok(Self {
            pd,
            ctx,
            port: rdma.port,
            gid_index: rdma.gid_index,
            gid,
            lid: port.lid(),
            mtu: port.active_mtu(),
        })
    }

    fn register(&self, link: &Link) -> Result<Arc<MemoryRegion>, String> {
        let (ptr, len) = link.buffer();
        // SAFETY: the buffer is a live anonymous mapping of `len` bytes owned by `link`,
        // which every queue pair using this region keeps alive (through the transport
        // that owns both) until the queue pair is destroyed.
        unsafe { self.pd.reg_mr(ptr as usize, len, AccessFlags::LocalWrite | AccessFlags::RemoteWrite) }
            .map_err(|e| format!("cannot register {len} bytes for RDMA: {}", why(&e)))
    }
}

/// What each side of a queue pair tells the other.
#[derive(Debug, PartialEq)]
struct Hello {
    qpn: u32,
    psn: u32,
    lid: u16,
    gid: [u8; 16],
    addr: u64,
    rkey: u32,
    ring: u64,
    id: String,
}

impl Hello {
    fn encode(&self) -> Vec<u8> {
        let mut b = MAGIC.to_vec();
        b.extend_from_slice(&self.qpn.to_le_bytes());
        b.extend_from_slice(&self.psn.to_le_bytes());
        b.extend_from_slice(&self.lid.to_le_bytes());
        b.extend_from_slice(&self.gid);
        b.extend_from_slice(&self.addr.to_le_bytes());
        b.extend_from_slice(&self.rkey.to_le_bytes());
        b.extend_from_slice(&self.ring.to_le_bytes());
        b.extend_from_slice(&(self.id.len() as u16).to_le_bytes());
        b.extend_from_slice(self.id.as_bytes());
        b
    }

    fn read(stream: &mut impl Read) -> io::Result<Self> {
        let mut fixed = [0u8; 8 + 4 + 4 + 2 + 16 + 8 + 4 + 8 + 2];
        stream.read_exact(&mut fixed)?;
        let bad = |why: &str| io::Error::new(io::ErrorKind::InvalidData, format!("RDMA hello: {why}"));
        if &fixed[..8] != MAGIC {
            return Err(bad("not an RDMA set-up connection"));
        }
        let mut at = 8;
        let mut take = |n: usize| {
            at += n;
            &fixed[at - n..at]
        };
        let u32_at = |b: &[u8]| u32::from_le_bytes(b.try_into().expect("4 bytes"));
        let u64_at = |b: &[u8]| u64::from_le_bytes(b.try_into().expect("8 bytes"));
        let (qpn, psn) = (u32_at(take(4)), u32_at(take(4)));
        let lid = u16::from_le_bytes(take(2).try_into().expect("2 bytes"));
        let gid: [u8; 16] = take(16).try_into().expect("16 bytes");
        let (addr, rkey, ring) = (u64_at(take(8)), u32_at(take(4)), u64_at(take(8)));
        let len = u16::from_le_bytes(take(2).try_into().expect("2 bytes")) as usize;
        let mut id = vec![0; len];
        stream.read_exact(&mut id)?;
        let id = String::from_utf8(id).map_err(|_| bad("the member id is not UTF-8"))?;
        Ok(Self { qpn, psn, lid, gid, addr, rkey, ring, id })
    }
}

/// A queue pair of one link, with its completion queue.
struct Qp {
    // Dropped in this order: the queue pair before the queue and region it uses.
    qp: GenericQueuePair,
    cq: Arc<BasicCompletionQueue>,
    mr: Arc<MemoryRegion>,
    remote_addr: u64,
    rkey: u32,
    /// Sends posted and not yet known complete.
    in_flight: u32,
    posted: u64,
    /// Receives consumed by completions and not yet posted again.
    recv_free: u32,
    imms: Vec<u32>,
}

impl Qp {
    /// A queue pair in INIT with its receives posted, and our hello.
    fn create(
        device: &Device,
        mr: Arc<MemoryRegion>,
        me: &MemberId,
        ring: u64,
    ) -> Result<(Self, Hello), String> {
        let cq = device
            .ctx
            .create_cq_builder()
            .setup_cqe(SEND_DEPTH + RECV_DEPTH)
            .build()
            .map_err(|e| format!("cannot create a completion queue: {}", why(&e)))?;
        let qp = device
            .pd
            .create_qp_builder()
            .setup_send_cq(Arc::clone(&cq))
            .setup_recv_cq(Arc::clone(&cq))
            .setup_max_send_wr(SEND_DEPTH)
            .setup_max_recv_wr(RECV_DEPTH)
            .setup_max_inline_data(INLINE as u32)
            .build()
            .map_err(|e| format!("cannot create a queue pair: {}", why(&e)))?;
        let mut qp = GenericQueuePair::from(qp);
        let mut attr = QueuePairAttribute::new();
        attr.setup_state(QueuePairState::Init)
            .setup_pkey_index(0)
            .setup_port(device.port)
            .setup_access_flags(AccessFlags::LocalWrite | AccessFlags::RemoteWrite);
        qp.modify(&attr).map_err(|e| format!("queue pair to INIT: {}", why(&e)))?;
        let psn = (super::super::ring_transport::new_epoch() as u32) & 0x00ff_ffff;
        let hello = Hello {
            qpn: qp.qp_number(),
            psn,
            lid: device.lid,
            gid: device.gid.raw,
            addr: mr.get_ptr() as u64,
            rkey: mr.rkey(),
            ring,
            id: me.as_str().to_owned(),
        };
        let mut qp = Self {
            qp,
            cq,
            mr,
            remote_addr: 0,
            rkey: 0,
            in_flight: 0,
            posted: 0,
            recv_free: RECV_DEPTH,
            imms: Vec::new(),
        };
        qp.post_receives()?;
        Ok((qp, hello))
    }

    /// RTR then RTS towards the peer that said `theirs`.
    fn connect(&mut self, device: &Device, ours: &Hello, theirs: &Hello) -> Result<(), String> {
        let mut attr = QueuePairAttribute::new();
        attr.setup_state(QueuePairState::ReadyToReceive)
            .setup_path_mtu(device.mtu)
            .setup_dest_qp_num(theirs.qpn)
            .setup_rq_psn(theirs.psn)
            .setup_max_dest_read_atomic(1)
            .setup_min_rnr_timer(12);
        let mut av = AddressHandleAttribute::new();
        av.setup_dest_lid(theirs.lid).setup_port(device.port).setup_service_level(0);
        if theirs.gid != [0; 16] {
            let gid = Gid { raw: theirs.gid };
            av.setup_grh_src_gid_index(device.gid_index).setup_grh_dest_gid(&gid).setup_grh_hop_limit(64);
        }
        attr.setup_address_vector(&av);
        self.qp.modify(&attr).map_err(|e| format!("queue pair to RTR: {}", why(&e)))?;
        let mut attr = QueuePairAttribute::new();
        attr.setup_state(QueuePairState::ReadyToSend)
            .setup_sq_psn(ours.psn)
            .setup_timeout(14)
            .setup_retry_cnt(7)
            .setup_rnr_retry(7)
            .setup_max_read_atomic(1);
        self.qp.modify(&attr).map_err(|e| format!("queue pair to RTS: {}", why(&e)))?;
        self.remote_addr = theirs.addr;
        self.rkey = theirs.rkey;
        Ok(())
    }

    fn post_receives(&mut self) -> Result<(), String> {
        if self.recv_free == 0 {
            return Ok(());
        }
        let mut guard = self.qp.start_post_recv();
        for _ in 0..self.recv_free {
            let _ = guard.construct_wr(0); // no buffer: only write-with-immediate arrives
        }
        guard.post().map_err(|e| format!("cannot post receives: {}", why(&e)))?;
        self.recv_free = 0;
        Ok(())
    }

    /// Takes every completion: immediates kept for `poll`, send slots freed.
    fn drain(&mut self) -> Result<(), String> {
        let poller = match self.cq.start_poll() {
            Ok(poller) => poller,
            Err(PollCompletionQueueError::CompletionQueueEmpty) => return Ok(()),
            Err(e) => return Err(format!("cannot poll completions: {}", why(&e))),
        };
        for wc in poller {
            if wc.status() != WorkCompletionStatus::Success as u32 {
                let status = WorkCompletionStatus::from(wc.status());
                return Err(format!("a work request failed: {status:?} (vendor error {})", wc.vendor_err()));
            }
            if wc.opcode() == WorkCompletionOperationType::ReceiveWithImmediate as u32 {
                self.imms.push(u32::from_be(wc.imm_data()));
                self.recv_free += 1;
            } else {
                self.in_flight = self.in_flight.saturating_sub(SIGNAL_EVERY);
            }
        }
        if self.recv_free >= RECV_DEPTH / 4 {
            self.post_receives()?;
        }
        Ok(())
    }
}

impl Verbs for Qp {
    fn write(&mut self, local: usize, remote: usize, len: usize, imm: Option<u32>) -> Result<(), String> {
        while self.in_flight + 1 >= SEND_DEPTH {
            self.drain()?; // the send queue is full: wait for the NIC
        }
        self.posted += 1;
        let mut flags = if self.posted.is_multiple_of(SIGNAL_EVERY.into()) {
            WorkRequestFlags::Signaled
        } else {
            WorkRequestFlags::none()
        };
        if len <= INLINE {
            flags |= WorkRequestFlags::Inline;
        }
        let base = self.mr.get_ptr();
        let (rkey, to) = (self.rkey, self.remote_addr + remote as u64);
        let mut guard = self.qp.start_post_send();
        let wr = guard.construct_wr(self.posted, flags);
        let wr = match imm {
            Some(imm) => wr.setup_write_imm(rkey, to, imm.to_be()),
            None => wr.setup_write(rkey, to),
        };
        if len <= INLINE {
            // SAFETY: `local..local + len` lies in the registered buffer (the link's
            // layout), which lives as long as this queue pair; the bytes are copied now.
            let bytes = unsafe { std::slice::from_raw_parts((base + local) as *const u8, len) };
            wr.setup_inline_data(bytes);
        } else {
            // SAFETY: as above; the NIC reads these staging bytes later, and the ring
            // protocol does not rewrite them until the peer returned them as credits.
            unsafe { wr.setup_sge(self.mr.lkey(), (base + local) as u64, len as u32) };
        }
        guard.post().map_err(|e| format!("cannot post an RDMA write: {}", why(&e)))?;
        self.in_flight += 1;
        Ok(())
    }

    fn poll(&mut self, imms: &mut Vec<u32>) -> Result<(), String> {
        self.drain()?;
        imms.append(&mut self.imms);
        Ok(())
    }
}

/// A set-up connection a peer opened, with its hello, for that peer's thread.
type Accepted = (TcpStream, Hello);

/// Everything a link's set-up thread needs.
struct Peer {
    // Dropped before the link: the registration before the memory it covers.
    mr: Arc<MemoryRegion>,
    link: Arc<Link>,
    me: MemberId,
    member: Member,
    /// The address set-up connections come from (see `tcp::source_addr`).
    source: Option<Ipv4Addr>,
    device: Arc<Device>,
    config: TransportConfig,
    ring: u64,
    stop: Arc<AtomicBool>,
}

impl Peer {
    fn initiates(&self) -> bool {
        self.me.as_str() < self.member.id.as_str()
    }

    /// Sets up queue pairs for as long as the transport runs.
    fn run(&self, accepted: &Receiver<Accepted>) {
        let mut delay = self.config.reconnect_min;
        let mut next: Option<Accepted> = None;
        while !self.stop.load(Ordering::Acquire) {
            let result = if self.initiates() {
                self.connect().and_then(|stream| self.session(stream, None, accepted, &mut next))
            } else {
                match next.take().or_else(|| accepted.recv_timeout(TICK).ok()) {
                    Some((stream, hello)) => self.session(stream, Some(hello), accepted, &mut next),
                    None => continue,
                }
            };
            match result {
                Ok(()) => delay = self.config.reconnect_min,
                Err(e) => {
                    tracing::warn!("rdma set-up with {}: {e}", self.member.id);
                    std::thread::sleep(delay);
                    delay = (2 * delay).min(self.config.reconnect_max);
                }
            }
        }
        self.link.down("the transport stopped");
    }

    fn connect(&self) -> Result<TcpStream, String> {
        // From our own address: the acceptor checks it against the configuration.
        let to = member_socket(&self.member, self.member.rsl_port)
            .map_err(|e| format!("cannot resolve {}: {e}", self.member.id))?;
        connect_from(self.source, to, self.config.send_timeout)
            .map_err(|e| format!("cannot connect to {to}: {}", why(&e)))
    }

    /// One queue pair's life: set-up over `stream`, then use until either side fails.
    fn session(
        &self,
        mut stream: TcpStream,
        theirs: Option<Hello>,
        accepted: &Receiver<Accepted>,
        next: &mut Option<Accepted>,
    ) -> Result<(), String> {
        let io = |e: io::Error| format!("set-up connection: {e}");
        stream.set_read_timeout(Some(self.config.receive_timeout)).map_err(io)?;
        stream.set_write_timeout(Some(self.config.send_timeout)).map_err(io)?;
        let (mut qp, ours) = Qp::create(&self.device, Arc::clone(&self.mr), &self.me, self.ring)?;
        stream.write_all(&ours.encode()).map_err(io)?;
        let theirs = match theirs {
            Some(hello) => hello,
            None => Hello::read(&mut stream).map_err(io)?,
        };
        if theirs.id != self.member.id.as_str() || theirs.ring != self.ring {
            return Err(format!("the peer is {} with rings of {} bytes", theirs.id, theirs.ring));
        }
        qp.connect(&self.device, &ours, &theirs)?;
        let mut ready = [1u8];
        if self.initiates() {
            stream.write_all(&ready).map_err(io)?;
        } else {
            stream.read_exact(&mut ready).map_err(io)?;
        }
        self.link.up(Box::new(qp));
        // The queue pair lives while the connection does (and the link stays up).
        stream.set_read_timeout(Some(TICK)).map_err(io)?;
        let why = loop {
            if self.stop.load(Ordering::Acquire) {
                break "the transport stopped".to_owned();
            }
            if !self.link.is_up() {
                break "the queue pair failed".to_owned();
            }
            if let Ok(newer) = accepted.try_recv() {
                *next = Some(newer);
                break "the peer connected again".to_owned();
            }
            match stream.read(&mut ready) {
                Ok(0) => break "the peer closed the set-up connection".to_owned(),
                Err(e) if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut) => {}
                Ok(_) => {}
                Err(e) => break format!("set-up connection: {e}"),
            }
        };
        self.link.down(&why);
        Ok(())
    }
}

/// Accepts set-up connections and hands each to its peer's thread.
fn accept_loop(
    listener: &TcpListener,
    peers: &HashMap<String, (Member, Sender<Accepted>)>,
    config: &TransportConfig,
    stop: &AtomicBool,
) {
    while !stop.load(Ordering::Acquire) {
        let (mut stream, from) = match listener.accept() {
            Ok(accepted) => accepted,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                std::thread::sleep(TICK);
                continue;
            }
            Err(e) => {
                tracing::warn!("rdma set-up listener: {e}");
                std::thread::sleep(TICK);
                continue;
            }
        };
        let hello = stream
            .set_nonblocking(false)
            .and_then(|()| stream.set_read_timeout(Some(config.receive_timeout)))
            .and_then(|()| Hello::read(&mut stream));
        match hello {
            Ok(hello) => match peers.get(&hello.id) {
                Some((member, tx)) if member.ip == 0 || IpAddr::V4(member_addr(member.ip)) == from.ip() => {
                    let _ = tx.try_send((stream, hello));
                }
                _ => tracing::warn!("rdma set-up from {from} as {:?}: not a peer there; refused", hello.id),
            },
            Err(e) => tracing::warn!("rdma set-up from {from}: {e}; refused"),
        }
    }
}

/// Opens the device, registers a link per peer and starts the set-up threads.
pub(super) fn start(config: &TransportConfig, rdma: &RdmaConfig) -> Result<RingTransport, StartError> {
    let device = Arc::new(Device::open(rdma).map_err(StartError::Rdma)?);
    let members = config.members.members();
    let me = members
        .iter()
        .find(|m| m.id == config.me)
        .ok_or_else(|| StartError::NotAMember(config.me.clone()))?;
    let listener = bind(listen_addr(me, config.listen_on_all_ips)).map_err(StartError::Listen)?;
    listener.set_nonblocking(true).map_err(StartError::Listen)?;
    let stop = Arc::new(AtomicBool::new(false));
    let (mut links, mut threads, mut routes) = (Vec::new(), Vec::new(), HashMap::new());
    for member in members.iter().filter(|m| m.id != config.me) {
        let link = Arc::new(
            Link::new(member.id.clone(), rdma.ring_bytes).map_err(|e| StartError::Rdma(e.to_string()))?,
        );
        let mr = device.register(&link).map_err(StartError::Rdma)?;
        let (tx, rx) = bounded(4);
        routes.insert(member.id.as_str().to_owned(), (member.clone(), tx));
        let peer = Peer {
            me: config.me.clone(),
            member: member.clone(),
            source: source_addr(me, config.listen_on_all_ips),
            link: Arc::clone(&link),
            mr,
            device: Arc::clone(&device),
            config: config.clone(),
            ring: rdma.ring_bytes,
            stop: Arc::clone(&stop),
        };
        let name = format!("rsl-rdma-{}", member.id);
        threads.push(
            std::thread::Builder::new()
                .name(name)
                .spawn(move || peer.run(&rx))
                .map_err(StartError::Thread)?,
        );
        links.push(link);
    }
    let (accept_stop, accept_config) = (Arc::clone(&stop), config.clone());
    let acceptor = std::thread::Builder::new()
        .name(format!("rsl-rdma-accept-{}", config.me))
        .spawn(move || accept_loop(&listener, &routes, &accept_config, &accept_stop))
        .map_err(StartError::Thread)?;
    threads.push(acceptor);
    let medium_stop = Box::new(move || {
        stop.store(true, Ordering::Release);
        threads.into_iter().for_each(|t: JoinHandle<()>| {
            let _ = t.join();
        });
    });
    let peers = links.iter().map(super::peer_lines).collect();
    super::start_over(config, peers, links, Some(medium_stop))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hello_reads_back_and_a_stranger_is_refused() {
        let hello = Hello {
            qpn: 7,
            psn: 0xabcdef,
            lid: 3,
            gid: [9; 16],
            addr: 1 << 40,
            rkey: 42,
            ring: 1 << 22,
            id: "r2".into(),
        };
        assert_eq!(Hello::read(&mut &hello.encode()[..]).unwrap(), hello);
        let mut garbage = hello.encode();
        garbage[0] = b'X';
        assert!(Hello::read(&mut &garbage[..]).unwrap_err().to_string().contains("not an RDMA set-up"));
        assert!(Hello::read(&mut &hello.encode()[..20]).is_err(), "a short hello");
    }
}
