//! TLS for the Paxos and learn ports, with legacy's certificate pinning: both sides
//! present a certificate, within its validity period, and each accepts the other if
//! - its SHA-1 thumbprint is one of the two configured (`SetThumbprintsForSsl`: A or B,
//!   so a cluster can rotate) — and, when asked, its chain leads to a CA in the
//!   certificate directory; or
//! - its subject is one configured and it is signed by a certificate whose thumbprint is
//!   one of that subject's issuers (`SetSubjectNamesForSsl`); the issuer comes with the
//!   peer's chain or from the CA directory, and its signature is checked.
//!
//! rustls (ring) does the protocol.
//!
//! Certificates come from a directory of PEM files (the stand-in for Windows' "MY" store):
//! each file holds a certificate chain, leaf first, and the leaf's private key. This
//! replica presents the certificate whose thumbprint is A, or B if A's is not there.
//! `<dir>/ca/*.pem` holds the CAs for chain validation.
//!
//! A connection's handshake runs on its own thread with a deadline, so a peer that never
//! finishes one blocks nobody (legacy 1.2.30's bug). After it, a connection is read on one
//! thread and written on another: [`TlsConn`] keeps the session behind a lock that no one
//! holds while blocked on the socket, and writes records in the order it sealed them.

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{verify_tls12_signature, verify_tls13_signature, CryptoProvider};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::server::ParsedCertificate;
use rustls::{
    CertificateError, ClientConfig, ClientConnection, Connection, DigitallySignedStruct, DistinguishedName,
    RootCertStore, ServerConfig, ServerConnection, SignatureScheme,
};
use sha1::{Digest, Sha1};
use socket2::SockRef;
use std::fmt;
use std::io::{self, Read, Write};
use std::net::{IpAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

/// What `SetThumbprintsForSsl` configures, plus where the certificates are.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TlsConfig {
    /// PEM files of certificate chains with their keys; CAs under `ca/`.
    pub cert_dir: PathBuf,
    /// SHA-1 thumbprints (40 hex digits; spaces and colons ignored). Ours is A's
    /// certificate, else B's; a peer presenting A's or B's is accepted.
    pub thumbprints: [Option<String>; 2],
    /// Subjects accepted with the thumbprints of the certificates that may issue them;
    /// ours is the first certificate whose subject is one of these (when no thumbprint
    /// names it). At least one thumbprint or subject is given.
    pub subjects: Vec<SubjectRule>,
    /// The peer's chain must also lead to a CA in `<cert_dir>/ca`.
    pub validate_ca_chain: bool,
    /// Revocation checking: not built (no CRL or OCSP source here); asking for it fails.
    pub check_revocation: bool,
    /// The longest a handshake may take.
    pub handshake_timeout: Duration,
}

/// A subject name (`CN=…`, the common name alone, or the whole distinguished name) and
/// the thumbprints of its allowed issuers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SubjectRule {
    pub subject: String,
    pub issuers: Vec<String>,
}

/// Why TLS could not be set up.
#[derive(Debug)]
pub struct TlsError(String);

impl fmt::Display for TlsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TLS: {}", self.0)
    }
}

impl std::error::Error for TlsError {}

type Thumbprint = [u8; 20];

fn thumbprint(cert: &[u8]) -> Thumbprint {
    Sha1::digest(cert).into()
}

fn parse_thumbprint(text: &str) -> Result<Thumbprint, TlsError> {
    let bad = || TlsError(format!("thumbprint {text:?} is not 40 hex digits"));
    let digits: Vec<u32> = text
        .chars()
        .filter(|c| !matches!(c, ' ' | ':'))
        .map(|c| c.to_digit(16).ok_or_else(bad))
        .collect::<Result<_, _>>()?;
    if digits.len() != 40 {
        return Err(bad());
    }
    let pairs = digits.chunks_exact(2).map(|pair| (pair[0] << 4 | pair[1]) as u8);
    Ok(pairs.collect::<Vec<u8>>().try_into().expect("40 digits make 20 bytes"))
}

/// Refuses a certificate outside its validity period (webpki checks it only on chains).
fn check_validity(cert: &CertificateDer<'_>, now: UnixTime) -> Result<(), rustls::Error> {
    let (_, parsed) = x509_parser::parse_x509_certificate(cert)
        .map_err(|_| rustls::Error::InvalidCertificate(CertificateError::BadEncoding))?;
    let now = now.as_secs() as i64;
    let validity = parsed.validity();
    if now < validity.not_before.timestamp() {
        return Err(rustls::Error::InvalidCertificate(CertificateError::NotValidYet));
    }
    if now > validity.not_after.timestamp() {
        return Err(rustls::Error::InvalidCertificate(CertificateError::Expired));
    }
    Ok(())
}

/// Whether `cert`'s subject is `subject`: its whole distinguished name, its common name,
/// or `CN=` and its common name.
fn subject_is(cert: &[u8], subject: &str) -> bool {
    let Ok((_, parsed)) = x509_parser::parse_x509_certificate(cert) else { return false };
    let dn = parsed.subject();
    let cn = dn.iter_common_name().next().and_then(|cn| cn.as_str().ok()).unwrap_or_default();
    let subject = subject.trim();
    subject == dn.to_string()
        || (!cn.is_empty() && (subject == cn || subject.strip_prefix("CN=") == Some(cn)))
}

/// A subject rule with its issuers' thumbprints parsed.
#[derive(Debug)]
struct Subject {
    name: String,
    issuers: Vec<Thumbprint>,
}

/// Accepts a peer whose certificate is pinned (and valid, and chained to a CA if asked),
/// or whose subject is allowed and signed by one of its allowed issuers.
#[derive(Debug)]
struct Pinned {
    pins: Vec<Thumbprint>,
    subjects: Vec<Subject>,
    roots: Option<RootCertStore>,
    /// The CA directory's certificates, where a subject's issuer may be found.
    cas: Vec<CertificateDer<'static>>,
    provider: Arc<CryptoProvider>,
}

impl Pinned {
    fn check(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<(), rustls::Error> {
        check_validity(end_entity, now)?;
        let parsed = ParsedCertificate::try_from(end_entity)?;
        let algorithms = self.provider.signature_verification_algorithms.all;
        let signed_by = |roots: &RootCertStore| {
            rustls::client::verify_server_cert_signed_by_trust_anchor(
                &parsed,
                roots,
                intermediates,
                now,
                algorithms,
            )
        };
        if self.pins.contains(&thumbprint(end_entity)) {
            return self.roots.as_ref().map_or(Ok(()), signed_by);
        }
        for rule in self.subjects.iter().filter(|rule| subject_is(end_entity, &rule.name)) {
            let mut issuers = RootCertStore::empty();
            let candidates = intermediates.iter().chain(&self.cas);
            let allowed = candidates.filter(|c| rule.issuers.contains(&thumbprint(c)));
            issuers.add_parsable_certificates(allowed.map(|c| c.clone().into_owned()));
            if !issuers.is_empty() && signed_by(&issuers).is_ok() {
                return Ok(());
            }
        }
        Err(rustls::Error::InvalidCertificate(CertificateError::ApplicationVerificationFailure))
    }

    fn schemes(&self) -> Vec<SignatureScheme> {
        self.provider.signature_verification_algorithms.supported_schemes()
    }
}

impl ServerCertVerifier for Pinned {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _name: &ServerName<'_>,
        _ocsp: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        self.check(end_entity, intermediates, now).map(|()| ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(message, cert, dss, &self.provider.signature_verification_algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(message, cert, dss, &self.provider.signature_verification_algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.schemes()
    }
}

impl ClientCertVerifier for Pinned {
    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &[]
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        self.check(end_entity, intermediates, now).map(|()| ClientCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(message, cert, dss, &self.provider.signature_verification_algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(message, cert, dss, &self.provider.signature_verification_algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.schemes()
    }
}

/// A certificate chain and its key, from one PEM file.
type Identity = (Vec<CertificateDer<'static>>, PrivateKeyDer<'static>);

/// Every PEM file in `dir` holding a chain and a key, by the leaf's thumbprint.
fn identities(dir: &Path) -> Result<Vec<(Thumbprint, Identity)>, TlsError> {
    let entries = std::fs::read_dir(dir).map_err(|e| TlsError(format!("{}: {e}", dir.display())))?;
    let mut found = Vec::new();
    for path in entries.filter_map(Result::ok).map(|e| e.path()) {
        if path.extension().is_none_or(|e| e != "pem") {
            continue;
        }
        let Ok(certs) = CertificateDer::pem_file_iter(&path).and_then(Iterator::collect::<Result<Vec<_>, _>>)
        else {
            continue;
        };
        let (Some(leaf), Ok(key)) = (certs.first(), PrivateKeyDer::from_pem_file(&path)) else { continue };
        found.push((thumbprint(leaf), (certs, key)));
    }
    Ok(found)
}

/// TLS set up for one replica: its certificate and the pinned peers.
#[derive(Debug)]
pub struct Tls {
    client: Arc<ClientConfig>,
    server: Arc<ServerConfig>,
    timeout: Duration,
}

impl Tls {
    /// Loads our certificate and builds both sides' configurations. Fails, saying why, on
    /// a malformed thumbprint, a missing or expired certificate, a missing CA, or a
    /// request for revocation checking.
    pub fn new(config: &TlsConfig) -> Result<Self, TlsError> {
        if config.check_revocation {
            return Err(TlsError("revocation checking is not built (no CRL or OCSP source)".into()));
        }
        let pins: Vec<Thumbprint> =
            config.thumbprints.iter().flatten().map(|t| parse_thumbprint(t)).collect::<Result<_, _>>()?;
        let subjects = config
            .subjects
            .iter()
            .map(|rule| {
                let issuers = rule.issuers.iter().map(|t| parse_thumbprint(t)).collect::<Result<_, _>>()?;
                Ok(Subject { name: rule.subject.clone(), issuers })
            })
            .collect::<Result<Vec<_>, TlsError>>()?;
        if pins.is_empty() && subjects.is_empty() {
            return Err(TlsError("no thumbprint or subject given".into()));
        }
        let mut identities = identities(&config.cert_dir)?;
        let ours = pins.iter().find_map(|pin| identities.iter().position(|(t, _)| t == pin)).or_else(|| {
            let named = |(_, (chain, _)): &(Thumbprint, Identity)| {
                subjects.iter().any(|s| subject_is(&chain[0], &s.name))
            };
            identities.iter().position(named)
        });
        let Some(ours) = ours else {
            let wanted = config.thumbprints.iter().flatten().cloned();
            let wanted: Vec<String> =
                wanted.chain(config.subjects.iter().map(|s| s.subject.clone())).collect();
            return Err(TlsError(format!(
                "no certificate with thumbprint or subject {} in {}",
                wanted.join(" or "),
                config.cert_dir.display()
            )));
        };
        let (_, (chain, key)) = identities.swap_remove(ours);
        check_validity(&chain[0], UnixTime::now())
            .map_err(|e| TlsError(format!("our certificate in {}: {e}", config.cert_dir.display())))?;
        let roots = match config.validate_ca_chain {
            false => None,
            true => Some(ca_roots(&config.cert_dir.join("ca"))?),
        };
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let cas = certificates_in(&config.cert_dir.join("ca"));
        let verifier = Arc::new(Pinned { pins, subjects, roots, cas, provider: Arc::clone(&provider) });
        let bad = |e: rustls::Error| TlsError(e.to_string());
        let mut server = ServerConfig::builder_with_provider(Arc::clone(&provider))
            .with_safe_default_protocol_versions()
            .map_err(bad)?
            .with_client_cert_verifier(Arc::clone(&verifier) as Arc<dyn ClientCertVerifier>)
            .with_single_cert(chain.clone(), key.clone_key())
            .map_err(bad)?;
        server.send_tls13_tickets = 0; // no resumption: every connection proves its certificate
        let client = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(bad)?
            .dangerous()
            .with_custom_certificate_verifier(verifier)
            .with_client_auth_cert(chain, key)
            .map_err(bad)?;
        Ok(Self { client: Arc::new(client), server: Arc::new(server), timeout: config.handshake_timeout })
    }

    /// Our side of a connection we opened to `peer`, once the handshake is done.
    pub(super) fn connect(&self, sock: Arc<TcpStream>, peer: IpAddr) -> io::Result<TlsConn> {
        let conn = ClientConnection::new(Arc::clone(&self.client), ServerName::IpAddress(peer.into()))
            .map_err(io::Error::other)?;
        TlsConn::handshake(conn.into(), sock, self.timeout)
    }

    /// Our side of a connection a peer opened, once the handshake is done.
    pub(super) fn accept(&self, sock: Arc<TcpStream>) -> io::Result<TlsConn> {
        let conn = ServerConnection::new(Arc::clone(&self.server)).map_err(io::Error::other)?;
        TlsConn::handshake(conn.into(), sock, self.timeout)
    }
}

/// Every certificate in the PEM files of `dir` (none if there is no such directory).
fn certificates_in(dir: &Path) -> Vec<CertificateDer<'static>> {
    let Ok(entries) = std::fs::read_dir(dir) else { return Vec::new() };
    let certs = entries.filter_map(Result::ok).filter_map(|e| CertificateDer::pem_file_iter(e.path()).ok());
    certs.flat_map(|file| file.filter_map(Result::ok)).collect()
}

fn ca_roots(dir: &Path) -> Result<RootCertStore, TlsError> {
    let mut roots = RootCertStore::empty();
    roots.add_parsable_certificates(certificates_in(dir));
    if roots.is_empty() {
        return Err(TlsError(format!(
            "CA validation asked for, but {} holds no CA certificate",
            dir.display()
        )));
    }
    Ok(roots)
}

/// An established TLS connection, read by one thread and written by another. Only writers
/// send, so a reader never blocks on the socket's send side.
pub(super) struct TlsConn {
    session: Mutex<Connection>,
    /// Held while sealed records are written, in the order they were sealed.
    out: Mutex<()>,
    sock: Arc<TcpStream>,
}

impl TlsConn {
    fn handshake(mut session: Connection, sock: Arc<TcpStream>, timeout: Duration) -> io::Result<Self> {
        let deadline = Instant::now() + timeout;
        let (read_timeout, write_timeout) = (sock.read_timeout()?, sock.write_timeout()?);
        while session.is_handshaking() {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(io::Error::new(io::ErrorKind::TimedOut, "the TLS handshake timed out"));
            }
            sock.set_read_timeout(Some(left))?;
            sock.set_write_timeout(Some(left))?;
            session.complete_io(&mut &*sock)?;
        }
        sock.set_read_timeout(read_timeout)?;
        sock.set_write_timeout(write_timeout)?;
        Ok(Self { session: Mutex::new(session), out: Mutex::new(()), sock })
    }

    fn session(&self) -> MutexGuard<'_, Connection> {
        self.session.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Writes what the session sealed, after releasing it (so the reader can go on).
    fn send_sealed(&self, mut session: MutexGuard<'_, Connection>) -> io::Result<()> {
        let mut sealed = Vec::new();
        while session.wants_write() {
            session.write_tls(&mut sealed)?;
        }
        if sealed.is_empty() {
            return Ok(());
        }
        let _order = self.out.lock().unwrap_or_else(PoisonError::into_inner);
        drop(session);
        let mut at = 0;
        while at < sealed.len() {
            // MSG_NOSIGNAL: a closed peer is an error here, never SIGPIPE in a C++ host.
            at += SockRef::from(&*self.sock).send_with_flags(&sealed[at..], libc::MSG_NOSIGNAL)?;
        }
        Ok(())
    }

    /// The plaintext stream: reads (one reader per connection) and writes.
    pub(super) fn stream(self: &Arc<Self>) -> TlsStream {
        TlsStream { conn: Arc::clone(self), raw: vec![0; 1 << 16], start: 0, end: 0 }
    }
}

/// Seals and sends plaintext.
impl Write for &TlsConn {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let mut session = self.session();
        let n = session.writer().write(buf)?;
        TlsConn::send_sealed(self, session)?;
        Ok(n)
    }

    /// A batch of packets goes out as few records as the session allows.
    fn write_vectored(&mut self, bufs: &[io::IoSlice<'_>]) -> io::Result<usize> {
        let mut session = self.session();
        let n = session.writer().write_vectored(bufs)?;
        TlsConn::send_sealed(self, session)?;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// A connection's plaintext. Reading feeds socket bytes into the session without holding
/// it while blocked; writing seals and sends.
pub(super) struct TlsStream {
    conn: Arc<TlsConn>,
    raw: Vec<u8>,
    start: usize,
    end: usize,
}

impl Write for TlsStream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        (&*self.conn).write(buf)
    }

    fn write_vectored(&mut self, bufs: &[io::IoSlice<'_>]) -> io::Result<usize> {
        (&*self.conn).write_vectored(bufs)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Read for TlsStream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            let mut session = self.conn.session();
            match session.reader().read(buf) {
                Ok(n) => return Ok(n), // 0: the peer closed the session cleanly
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => return Err(e),
            }
            if self.start == self.end {
                drop(session);
                self.end = (&*self.conn.sock).read(&mut self.raw)?;
                self.start = 0;
                if self.end == 0 {
                    return Ok(0);
                }
                session = self.conn.session();
            }
            self.start += session.read_tls(&mut &self.raw[self.start..self.end])?;
            // What the peer's records make us send (a key-update answer) waits for the
            // next write: a reader that blocked sending could, with the peer's doing the
            // same, stop both sides draining their sockets.
            session.process_new_packets().map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
        }
    }
}
