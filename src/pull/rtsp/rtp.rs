//! RTP packets from a camera (RFC 3550): the header, and a per-track
//! receiver that checks what a camera could get wrong — the SSRC, the
//! sequence (losses), and the 32-bit timestamp, which it extends to a
//! 64-bit presentation time with wrap-around and jump handling. Pure.

use bytes::Bytes;

/// A parsed RTP packet. The payload shares the received buffer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Packet {
    pub marker: bool,
    pub payload_type: u8,
    pub sequence: u16,
    pub timestamp: u32,
    pub ssrc: u32,
    pub payload: Bytes,
}

/// Parses one RTP packet; `Err` names what is wrong.
pub fn parse(data: Bytes) -> Result<Packet, &'static str> {
    if data.len() < 12 {
        return Err("RTP packet shorter than its header");
    }
    if data[0] >> 6 != 2 {
        return Err("not RTP version 2");
    }
    let padding = data[0] & 0x20 != 0;
    let extension = data[0] & 0x10 != 0;
    let csrcs = (data[0] & 0x0f) as usize;
    let marker = data[1] & 0x80 != 0;
    let payload_type = data[1] & 0x7f;
    let sequence = u16::from_be_bytes([data[2], data[3]]);
    let timestamp = u32::from_be_bytes([data[4], data[5], data[6], data[7]]);
    let ssrc = u32::from_be_bytes([data[8], data[9], data[10], data[11]]);
    let mut start = 12 + 4 * csrcs;
    if extension {
        if data.len() < start + 4 {
            return Err("RTP header extension past the packet");
        }
        let words = u16::from_be_bytes([data[start + 2], data[start + 3]]) as usize;
        start += 4 + 4 * words;
    }
    let mut end = data.len();
    if padding {
        let pad = *data.last().expect("at least 12 bytes") as usize;
        if pad == 0 || end < start + pad {
            return Err("RTP padding past the payload");
        }
        end -= pad;
    }
    if start > end {
        return Err("RTP header longer than the packet");
    }
    Ok(Packet {
        marker,
        payload_type,
        sequence,
        timestamp,
        ssrc,
        payload: data.slice(start..end),
    })
}

/// What the receiver made of a packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// In order: its presentation time, and packets lost just before it.
    Accept { pts: i64, lost: u16 },
    /// Dropped: a duplicate, a late packet or another source's.
    Drop,
}

/// Why a track's packets cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RtpError {
    #[error("{count} RTP packets in a row from unexpected SSRCs (expected {expected:08x})")]
    WrongSsrc { expected: u32, count: u32 },
    #[error("RTP timestamps jumped {count} times in {window_secs} s")]
    TimestampJumps { count: u32, window_secs: u32 },
}

/// Packets of other SSRCs in a row after which a camera is in error,
/// unless they all share one SSRC (an encoder restart: re-locked first).
/// At one packet per frame, about a second of a 25 fps camera.
const WRONG_SSRC_LIMIT: u32 = 32;
/// Packets of one new SSRC in a row that re-lock the receiver on it.
const RELOCK_AFTER: u32 = 16;
/// Timestamp jumps tolerated per window before the camera is in error.
const JUMPS_LIMIT: u32 = 5;
const JUMPS_WINDOW_SECS: u32 = 10;

/// Per-track receive state.
#[derive(Debug)]
pub struct Receiver {
    clock_rate: u32,
    ssrc: Option<u32>,
    candidate: Option<(u32, u32)>,
    wrong_in_row: u32,
    next_seq: Option<u16>,
    last_ts: u32,
    /// Extended timestamp of the last accepted packet, re-based after jumps.
    pts: i64,
    /// Difference between successive timestamps seen last (a frame's
    /// duration), used to bridge a jump.
    last_step: i64,
    jumps: Vec<i64>,
}

impl Receiver {
    /// `ssrc`: the one the camera announced in SETUP's `Transport`, if any.
    pub fn new(clock_rate: u32, ssrc: Option<u32>) -> Self {
        Receiver {
            clock_rate: clock_rate.max(1),
            ssrc,
            candidate: None,
            wrong_in_row: 0,
            next_seq: None,
            last_ts: 0,
            pts: 0,
            last_step: 0,
            jumps: Vec::new(),
        }
    }

    /// Checks a packet.
    pub fn accept(&mut self, p: &Packet) -> Result<Verdict, RtpError> {
        match self.ssrc {
            None => self.ssrc = Some(p.ssrc),
            Some(s) if s == p.ssrc => {}
            Some(expected) => {
                self.wrong_in_row += 1;
                let run = match self.candidate {
                    Some((c, n)) if c == p.ssrc => n + 1,
                    _ => 1,
                };
                self.candidate = Some((p.ssrc, run));
                if run >= RELOCK_AFTER {
                    // The camera's encoder restarted with a new source:
                    // follow it, as a new timeline.
                    tracing::debug!(from = expected, to = p.ssrc, "RTP source changed");
                    self.ssrc = Some(p.ssrc);
                    self.next_seq = None;
                    self.wrong_in_row = 0;
                    self.candidate = None;
                } else if self.wrong_in_row >= WRONG_SSRC_LIMIT {
                    return Err(RtpError::WrongSsrc {
                        expected,
                        count: self.wrong_in_row,
                    });
                } else {
                    return Ok(Verdict::Drop);
                }
            }
        }
        self.wrong_in_row = 0;
        self.candidate = None;
        let lost = match self.next_seq {
            None => {
                self.last_ts = p.timestamp;
                self.pts = 0;
                0
            }
            Some(n) => {
                let gap = p.sequence.wrapping_sub(n);
                if gap >= 0x8000 {
                    return Ok(Verdict::Drop); // late or duplicate
                }
                let step = p.timestamp.wrapping_sub(self.last_ts) as i32 as i64;
                let max = JUMPS_WINDOW_SECS as i64 * self.clock_rate as i64;
                if step.abs() > max {
                    // A timestamp jump: bridge it with the last frame step
                    // so presentation times stay monotonic for viewers.
                    self.note_jump()?;
                    // Without a step seen yet, 1/25 s.
                    let step = if self.last_step > 0 {
                        self.last_step
                    } else {
                        (self.clock_rate / 25).max(1) as i64
                    };
                    self.pts += step;
                } else {
                    if step != 0 {
                        self.last_step = step;
                    }
                    self.pts += step;
                }
                self.last_ts = p.timestamp;
                gap
            }
        };
        self.next_seq = Some(p.sequence.wrapping_add(1));
        Ok(Verdict::Accept {
            pts: self.pts,
            lost,
        })
    }

    fn note_jump(&mut self) -> Result<(), RtpError> {
        // Jumps are counted on the stream's own clock.
        let now = self.pts;
        let window = JUMPS_WINDOW_SECS as i64 * self.clock_rate as i64;
        self.jumps.retain(|t| now - *t < window);
        self.jumps.push(now);
        if self.jumps.len() as u32 > JUMPS_LIMIT {
            return Err(RtpError::TimestampJumps {
                count: self.jumps.len() as u32,
                window_secs: JUMPS_WINDOW_SECS,
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    pub fn packet(seq: u16, ts: u32, ssrc: u32, marker: bool, payload: &[u8]) -> Bytes {
        let mut v = vec![0x80, if marker { 0x80 | 96 } else { 96 }];
        v.extend(seq.to_be_bytes());
        v.extend(ts.to_be_bytes());
        v.extend(ssrc.to_be_bytes());
        v.extend(payload);
        Bytes::from(v)
    }

    #[test]
    fn parses_headers_extensions_and_padding() {
        let p = parse(packet(7, 9000, 0xabcd, true, b"xyz")).unwrap();
        assert_eq!(
            (p.marker, p.payload_type, p.sequence, p.timestamp, p.ssrc),
            (true, 96, 7, 9000, 0xabcd)
        );
        assert_eq!(&p.payload[..], b"xyz");
        // One CSRC, an extension of one word, two bytes of padding.
        let mut v = vec![0xb1, 96, 0, 1, 0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 3];
        v.extend([0xbe, 0xde, 0, 1, 1, 2, 3, 4]);
        v.extend(b"ab");
        v.extend([0, 2]);
        assert_eq!(&parse(Bytes::from(v)).unwrap().payload[..], b"ab");
        for bad in [
            &[0x80u8, 96, 0][..],
            &[0x40, 96, 0, 1, 0, 0, 0, 1, 0, 0, 0, 2],
            &[0x90, 96, 0, 1, 0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0xff, 0xff],
            &[0xa0, 96, 0, 1, 0, 0, 0, 1, 0, 0, 0, 2, 0x20],
            &[0xa0, 96, 0, 1, 0, 0, 0, 1, 0, 0, 0, 2, 0],
            &[0x8f, 96, 0, 1, 0, 0, 0, 1, 0, 0, 0, 2],
        ] {
            assert!(parse(Bytes::copy_from_slice(bad)).is_err(), "{bad:?}");
        }
    }

    fn accept(r: &mut Receiver, seq: u16, ts: u32, ssrc: u32) -> Result<Verdict, RtpError> {
        r.accept(&parse(packet(seq, ts, ssrc, false, b"")).unwrap())
    }

    #[test]
    fn extends_timestamps_across_the_wrap_and_counts_losses() {
        let mut r = Receiver::new(90_000, None);
        assert_eq!(
            accept(&mut r, 65534, u32::MAX - 1799, 1),
            Ok(Verdict::Accept { pts: 0, lost: 0 })
        );
        assert_eq!(
            accept(&mut r, 65535, 1800 - 1800, 1),
            Ok(Verdict::Accept { pts: 1800, lost: 0 })
        );
        // Two packets lost across the sequence wrap.
        assert_eq!(
            accept(&mut r, 2, 3600, 1),
            Ok(Verdict::Accept { pts: 5400, lost: 2 })
        );
        // A duplicate and a late packet are dropped.
        assert_eq!(accept(&mut r, 2, 3600, 1), Ok(Verdict::Drop));
        assert_eq!(accept(&mut r, 65535, 0, 1), Ok(Verdict::Drop));
    }

    #[test]
    fn a_jump_is_bridged_and_many_are_an_error() {
        let mut r = Receiver::new(90_000, None);
        accept(&mut r, 0, 0, 1).unwrap();
        accept(&mut r, 1, 3600, 1).unwrap();
        // Jump forward an hour: the presentation time moves one frame.
        assert_eq!(
            accept(&mut r, 2, 3600 + 90_000 * 3600, 1),
            Ok(Verdict::Accept { pts: 7200, lost: 0 })
        );
        let mut ts = 3600u32 + 90_000 * 3600;
        let mut err = None;
        for seq in 3..20u16 {
            ts = ts.wrapping_add(90_000 * 100);
            if let Err(e) = accept(&mut r, seq, ts, 1) {
                err = Some(e);
                break;
            }
        }
        assert!(
            matches!(err, Some(RtpError::TimestampJumps { .. })),
            "{err:?}"
        );
    }

    #[test]
    fn wrong_ssrcs_are_dropped_then_an_error_and_a_steady_new_one_relocks() {
        let mut r = Receiver::new(90_000, Some(5));
        assert_eq!(
            accept(&mut r, 0, 0, 5),
            Ok(Verdict::Accept { pts: 0, lost: 0 })
        );
        // A new steady source: dropped, then followed.
        for i in 1..RELOCK_AFTER {
            assert_eq!(accept(&mut r, 100 + i as u16, 0, 9), Ok(Verdict::Drop));
        }
        assert!(matches!(
            accept(&mut r, 200, 0, 9),
            Ok(Verdict::Accept { .. })
        ));
        // Random sources: an error after the limit, never a re-lock.
        let mut got = None;
        for i in 0..WRONG_SSRC_LIMIT {
            match accept(&mut r, 300 + i as u16, 0, 1000 + i) {
                Ok(Verdict::Drop) => {}
                other => {
                    got = Some(other);
                    break;
                }
            }
        }
        assert!(
            matches!(got, Some(Err(RtpError::WrongSsrc { expected: 9, .. }))),
            "{got:?}"
        );
    }
}
