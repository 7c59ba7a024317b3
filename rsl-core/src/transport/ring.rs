//! The ring protocol of the one-sided transports (shared memory, RDMA): a sender writes
//! framed messages into a byte ring that belongs to the receiver and publishes how far it
//! wrote (the *tail*); the receiver reads frames below the tail and returns how far it read
//! (the *head*) as credits. The sender writes only between the tail and head + capacity,
//! so it never overwrites what the receiver has not read; without credits it must wait
//! (back-pressure). This module is the protocol alone: it says which bytes go where and
//! checks what it reads, and the transports move the bytes (a `memcpy` into a shared
//! mapping, an RDMA WRITE) and the two words.
//!
//! Positions are byte counts since the session began; position `p` lives at
//! `p % capacity`, so a frame may wrap around the end. A frame is 8-byte aligned:
//!
//! ```text
//! u32 len    payload bytes in this frame
//! u32 flags  bit 0: more fragments of the same message follow
//! u64 check  fingerprint(session, position, len, flags, payload)
//! payload, zero-padded to a multiple of 8
//! ```
//!
//! A message larger than a fragment (a quarter of the ring) goes as several frames, so any
//! message up to the configured maximum passes through a smaller ring. The checksum is
//! keyed by the session (a sender that restarts starts a new one) and the position, so
//! stale bytes of an earlier lap or session never pass for a frame; a frame that fails it,
//! or runs past the published tail, is reported as torn and never returned.

use crate::wire::{fingerprint, fingerprint_continue};

/// Bytes before each frame's payload.
pub const FRAME_HEADER: usize = 16;
const MORE: u32 = 1;

/// The size a frame of `len` payload bytes takes in the ring.
pub fn frame_len(len: usize) -> u64 {
    (FRAME_HEADER + len).next_multiple_of(8) as u64
}

/// Bytes to copy into the ring: `bytes` at position `at` (wrapping at the ring's end).
#[derive(Debug, PartialEq, Eq)]
pub struct Frame {
    pub at: u64,
    pub bytes: Vec<u8>,
}

/// The sender's side of one ring.
#[derive(Debug)]
pub struct Producer {
    capacity: u64,
    session: u64,
    tail: u64,
}

/// No room before the receiver's head: wait for credits.
#[derive(Debug, PartialEq, Eq)]
pub struct Full;

impl Producer {
    /// A new session over a ring of `capacity` bytes (a multiple of 32, at least 128).
    pub fn new(capacity: u64, session: u64) -> Self {
        assert!(capacity >= 128 && capacity.is_multiple_of(32), "a ring of {capacity} bytes");
        Self { capacity, session, tail: 0 }
    }

    /// The largest payload of one frame: longer messages are fragmented.
    pub fn max_fragment(&self) -> usize {
        (self.capacity / 4) as usize - FRAME_HEADER
    }

    /// Where the next frame goes; published to the receiver once its bytes are in place.
    pub fn tail(&self) -> u64 {
        self.tail
    }

    /// Frames `payload` (at most [`Producer::max_fragment`] bytes; `more` when further
    /// fragments of the message follow) at the tail, if the receiver's `head` leaves room.
    pub fn frame(&mut self, payload: &[u8], more: bool, head: u64) -> Result<Frame, Full> {
        assert!(payload.len() <= self.max_fragment(), "a fragment of {} bytes", payload.len());
        assert!(head <= self.tail, "credits for bytes never written: head {head} > tail {}", self.tail);
        let len = frame_len(payload.len());
        if self.tail + len - head > self.capacity {
            return Err(Full);
        }
        let flags = if more { MORE } else { 0 };
        let mut bytes = Vec::with_capacity(len as usize);
        bytes.extend_from_slice(&(payload.len() as u32).to_le_bytes());
        bytes.extend_from_slice(&flags.to_le_bytes());
        let check = checksum(self.session, self.tail, &bytes[..8], payload);
        bytes.extend_from_slice(&check.to_le_bytes());
        bytes.extend_from_slice(payload);
        bytes.resize(len as usize, 0);
        let frame = Frame { at: self.tail, bytes };
        self.tail += len;
        Ok(frame)
    }
}

/// What a receiver finds wrong in a ring; the session is unusable afterwards.
#[derive(Debug, PartialEq, Eq)]
pub enum RingError {
    /// The frame at `at` fails its checksum or runs past the published tail: its bytes
    /// were not all written, or were damaged.
    Torn { at: u64 },
    /// The published tail is behind the head or more than a ring ahead of it.
    BadTail { tail: u64, head: u64 },
    /// A message's fragments add up to more than the receiver accepts.
    TooLarge { len: usize, max: usize },
}

impl std::fmt::Display for RingError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Torn { at } => write!(f, "torn frame at ring position {at}"),
            Self::BadTail { tail, head } => write!(f, "published tail {tail} against head {head}"),
            Self::TooLarge { len, max } => write!(f, "a message of {len} bytes (max {max})"),
        }
    }
}

/// The receiver's side of one ring.
#[derive(Debug)]
pub struct Consumer {
    capacity: u64,
    session: u64,
    head: u64,
    /// The head last returned to the sender.
    credited: u64,
    /// Fragments of a message not yet complete.
    partial: Vec<u8>,
    max_message: usize,
}

impl Consumer {
    /// Reads a session of a ring of `capacity` bytes; messages longer than `max_message`
    /// are refused.
    pub fn new(capacity: u64, session: u64, max_message: usize) -> Self {
        Self { capacity, session, head: 0, credited: 0, partial: Vec::new(), max_message }
    }

    /// How far this receiver has read.
    pub fn head(&self) -> u64 {
        self.head
    }

    /// The next complete message below the published `tail`, if any. `read(at, buf)`
    /// fills `buf` from ring position `at` (wrapping), reading only bytes below `tail`.
    pub fn pop(
        &mut self,
        tail: u64,
        mut read: impl FnMut(u64, &mut [u8]),
    ) -> Result<Option<Vec<u8>>, RingError> {
        if tail < self.head || tail - self.head > self.capacity || !tail.is_multiple_of(8) {
            return Err(RingError::BadTail { tail, head: self.head });
        }
        while self.head < tail {
            let at = self.head;
            if tail - at < FRAME_HEADER as u64 {
                return Err(RingError::Torn { at });
            }
            let mut header = [0u8; FRAME_HEADER];
            read(at, &mut header);
            let len = u32::from_le_bytes(header[..4].try_into().expect("4 bytes")) as usize;
            let flags = u32::from_le_bytes(header[4..8].try_into().expect("4 bytes"));
            let total = frame_len(len);
            if flags & !MORE != 0 || total > tail - at || total > self.capacity / 4 {
                return Err(RingError::Torn { at });
            }
            if self.partial.len() + len > self.max_message {
                return Err(RingError::TooLarge { len: self.partial.len() + len, max: self.max_message });
            }
            let start = self.partial.len();
            self.partial.resize(start + len, 0);
            read(at + FRAME_HEADER as u64, &mut self.partial[start..]);
            let stored = u64::from_le_bytes(header[8..].try_into().expect("8 bytes"));
            if stored != checksum(self.session, at, &header[..8], &self.partial[start..]) {
                self.partial.truncate(start);
                return Err(RingError::Torn { at });
            }
            self.head += total;
            if flags & MORE == 0 {
                return Ok(Some(std::mem::take(&mut self.partial)));
            }
        }
        Ok(None)
    }

    /// The head to return as credits: once a quarter of the ring was read since the last
    /// return, or whenever anything was and `idle` says the receiver is about to wait.
    pub fn credit(&mut self, idle: bool) -> Option<u64> {
        let unreturned = self.head - self.credited;
        (unreturned > 0 && (idle || unreturned >= self.capacity / 4)).then(|| {
            self.credited = self.head;
            self.head
        })
    }
}

fn checksum(session: u64, at: u64, len_and_flags: &[u8], payload: &[u8]) -> u64 {
    let mut key = [0u8; 24];
    key[..8].copy_from_slice(&session.to_le_bytes());
    key[8..16].copy_from_slice(&at.to_le_bytes());
    key[16..].copy_from_slice(len_and_flags);
    fingerprint_continue(fingerprint(&key), payload)
}
