//! RTP packetization of the gateway's frames for re-serving. Pure.
//!
//! A frame is cut into packets whose payloads are slices of the frame's
//! shared [`Bytes`] (no copy): only a few prefix bytes (H.264 FU-A, H.265 FU,
//! RFC 3640 AU headers) and the 12-byte RTP header are written per packet and
//! per viewer. H.264 (RFC 6184) and H.265 (RFC 7798) NAL units that fit go
//! whole (single NAL unit mode), larger ones as fragmentation units.

use bytes::Bytes;

use crate::media::{Codec, Frame};

/// Largest RTP payload sent (so a packet fits a 1500-byte MTU with
/// headers; TCP interleaving has no such limit but clients expect it).
pub const MAX_PAYLOAD: usize = 1400;

/// One RTP packet's payload: `prefix` bytes then a slice of the frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Piece {
    pub prefix: Prefix,
    pub payload: Bytes,
    /// The last packet of the access unit (RTP marker bit for video).
    pub marker: bool,
}

/// Up to 4 bytes written before a payload slice.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Prefix {
    pub bytes: [u8; 4],
    pub len: u8,
}

impl Prefix {
    fn of(b: &[u8]) -> Prefix {
        let mut p = Prefix::default();
        p.bytes[..b.len()].copy_from_slice(b);
        p.len = b.len() as u8;
        p
    }
    pub fn as_slice(&self) -> &[u8] {
        &self.bytes[..self.len as usize]
    }
}

/// The NAL units of a frame in 4-byte length-prefixed form, as slices of
/// its data. A truncated length ends the walk.
pub fn nal_units(data: &Bytes) -> Vec<Bytes> {
    let mut out = Vec::new();
    let mut pos = 0usize;
    while pos + 4 <= data.len() {
        let len =
            u32::from_be_bytes([data[pos], data[pos + 1], data[pos + 2], data[pos + 3]]) as usize;
        let start = pos + 4;
        let Some(end) = start.checked_add(len).filter(|e| *e <= data.len()) else {
            break;
        };
        if len > 0 {
            out.push(data.slice(start..end));
        }
        pos = end;
    }
    out
}

/// Cuts a frame of `codec` into RTP payloads.
pub fn packetize(codec: Codec, frame: &Frame) -> Vec<Piece> {
    let mut out = Vec::new();
    match codec {
        Codec::H264 | Codec::H265 => {
            let header_len = if codec == Codec::H264 { 1 } else { 2 };
            for nal in nal_units(&frame.data) {
                if nal.len() < header_len {
                    continue;
                }
                if nal.len() <= MAX_PAYLOAD {
                    out.push(Piece {
                        prefix: Prefix::default(),
                        payload: nal,
                        marker: false,
                    });
                    continue;
                }
                // Fragmentation units: the NAL header moves into the FU
                // indicator/header; the rest is sliced.
                let body = nal.slice(header_len..);
                let chunk = MAX_PAYLOAD - header_len - 1;
                let n = body.len().div_ceil(chunk);
                for k in 0..n {
                    let (start, end) = (k * chunk, ((k + 1) * chunk).min(body.len()));
                    let se = if k == 0 { 0x80 } else { 0 } | if k + 1 == n { 0x40 } else { 0 };
                    let prefix = if codec == Codec::H264 {
                        Prefix::of(&[(nal[0] & 0xe0) | 28, se | (nal[0] & 0x1f)])
                    } else {
                        let nal_type = (nal[0] >> 1) & 0x3f;
                        Prefix::of(&[(nal[0] & 0x81) | (49 << 1), nal[1], se | nal_type])
                    };
                    out.push(Piece {
                        prefix,
                        payload: body.slice(start..end),
                        marker: false,
                    });
                }
            }
            if let Some(last) = out.last_mut() {
                last.marker = true;
            }
        }
        Codec::Aac => {
            // RFC 3640 AAC-hbr: AU-headers-length (16 bits) then one AU
            // header of 13-bit size and 3-bit index.
            let size = frame.data.len().min(0x1fff) as u16;
            let h = size << 3;
            out.push(Piece {
                prefix: Prefix::of(&[0, 16, (h >> 8) as u8, h as u8]),
                payload: frame.data.slice(..size as usize),
                marker: true,
            });
        }
        _ => {
            // G.711 and other audio: the frame as received.
            for k in 0..frame.data.len().div_ceil(MAX_PAYLOAD) {
                let end = ((k + 1) * MAX_PAYLOAD).min(frame.data.len());
                out.push(Piece {
                    prefix: Prefix::default(),
                    payload: frame.data.slice(k * MAX_PAYLOAD..end),
                    marker: false,
                });
            }
            if let Some(first) = out.first_mut() {
                first.marker = true;
            }
        }
    }
    out
}

/// Writes a 12-byte RTP header.
pub fn header(pt: u8, marker: bool, seq: u16, timestamp: u32, ssrc: u32) -> [u8; 12] {
    let mut h = [0u8; 12];
    h[0] = 0x80;
    h[1] = pt & 0x7f | if marker { 0x80 } else { 0 };
    h[2..4].copy_from_slice(&seq.to_be_bytes());
    h[4..8].copy_from_slice(&timestamp.to_be_bytes());
    h[8..12].copy_from_slice(&ssrc.to_be_bytes());
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(nals: &[Vec<u8>]) -> Frame {
        let mut d = Vec::new();
        for n in nals {
            d.extend((n.len() as u32).to_be_bytes());
            d.extend(n);
        }
        Frame {
            track: 0,
            pts: 0,
            is_key: true,
            data: Bytes::from(d),
            arrived: std::time::Instant::now(),
        }
    }

    /// Reassembles H.264 payloads into NAL units (what a receiver does).
    fn depacketize_h264(pieces: &[Piece]) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        let mut cur: Option<Vec<u8>> = None;
        for p in pieces {
            let mut b = p.prefix.as_slice().to_vec();
            b.extend_from_slice(&p.payload);
            if b[0] & 0x1f == 28 {
                if b[1] & 0x80 != 0 {
                    cur = Some(vec![(b[0] & 0xe0) | (b[1] & 0x1f)]);
                }
                cur.as_mut().unwrap().extend_from_slice(&b[2..]);
                if b[1] & 0x40 != 0 {
                    out.push(cur.take().unwrap());
                }
            } else {
                out.push(b);
            }
        }
        out
    }

    #[test]
    fn h264_small_and_fragmented_units_round_trip() {
        let sps = vec![0x67, 1, 2, 3];
        let big: Vec<u8> = std::iter::once(0x65)
            .chain((0..5000u32).map(|i| i as u8))
            .collect();
        let f = frame(&[sps.clone(), big.clone()]);
        let pieces = packetize(Codec::H264, &f);
        assert_eq!(pieces.len(), 1 + 5000usize.div_ceil(MAX_PAYLOAD - 2));
        assert!(
            pieces
                .iter()
                .all(|p| p.prefix.len as usize + p.payload.len() <= MAX_PAYLOAD)
        );
        assert_eq!(pieces.iter().filter(|p| p.marker).count(), 1);
        assert!(pieces.last().unwrap().marker);
        assert_eq!(depacketize_h264(&pieces), vec![sps, big]);
        // Payloads share the frame's buffer.
        let base = f.data.as_ptr() as usize;
        assert!(pieces.iter().all(|p| {
            let a = p.payload.as_ptr() as usize;
            a >= base && a < base + f.data.len()
        }));
    }

    #[test]
    fn h265_fragmentation_units() {
        // IDR_W_RADL (19): header 0x26 0x01.
        let big: Vec<u8> = [0x26, 0x01]
            .into_iter()
            .chain(std::iter::repeat_n(7, 3000))
            .collect();
        let pieces = packetize(Codec::H265, &frame(&[big]));
        assert!(pieces.len() >= 3);
        let first = pieces[0].prefix.as_slice();
        assert_eq!((first[0] >> 1) & 0x3f, 49, "FU type");
        assert_eq!(first[2], 0x80 | 19, "start bit and the NAL type");
        assert_eq!(pieces.last().unwrap().prefix.as_slice()[2], 0x40 | 19);
        let total: usize = pieces.iter().map(|p| p.payload.len()).sum();
        assert_eq!(total, 3000);
    }

    #[test]
    fn aac_gets_an_au_header_and_garbage_does_not_panic() {
        let f = Frame {
            track: 1,
            pts: 0,
            is_key: false,
            data: Bytes::from(vec![1u8; 300]),
            arrived: std::time::Instant::now(),
        };
        let p = packetize(Codec::Aac, &f);
        assert_eq!(
            p[0].prefix.as_slice(),
            &[0, 16, (300u16 << 3 >> 8) as u8, (300u16 << 3) as u8]
        );
        for junk in [
            &[0u8, 0, 0][..],
            &[0xff, 0xff, 0xff, 0xff, 1],
            &[0, 0, 0, 0, 0, 0, 0, 1, 0x65],
        ] {
            let f = Frame {
                track: 0,
                pts: 0,
                is_key: false,
                data: Bytes::copy_from_slice(junk),
                arrived: std::time::Instant::now(),
            };
            let _ = packetize(Codec::H264, &f);
            let _ = packetize(Codec::H265, &f);
        }
    }

    #[test]
    fn rtp_header_layout() {
        let h = header(96, true, 0x1234, 0xdead_beef, 7);
        assert_eq!(
            h,
            [0x80, 0xe0, 0x12, 0x34, 0xde, 0xad, 0xbe, 0xef, 0, 0, 0, 7]
        );
    }
}

/// Random frames (deterministic seed): packetizing never panics, every
/// payload stays within the MTU budget and inside the frame's buffer.
#[cfg(test)]
mod fuzz {
    use super::*;

    #[test]
    fn random_frames_packetize_within_bounds() {
        let mut rng = fastrand::Rng::with_seed(6184);
        for _ in 0..5_000 {
            let len = rng.usize(..6000);
            let mut data: Vec<u8> = (0..len).map(|_| rng.u8(..)).collect();
            // Often a plausible length prefix, sometimes not.
            if len >= 4 && rng.bool() {
                data[..4].copy_from_slice(&((len - 4) as u32).to_be_bytes());
            }
            let frame = Frame {
                track: 0,
                pts: 0,
                is_key: false,
                data: Bytes::from(data),
                arrived: std::time::Instant::now(),
            };
            for codec in [Codec::H264, Codec::H265, Codec::Aac, Codec::Pcma] {
                let base = frame.data.as_ptr() as usize;
                for p in packetize(codec, &frame) {
                    // AAC access units go whole (RFC 3640 allows 13-bit
                    // sizes); everything else within the MTU budget.
                    let limit = if codec == Codec::Aac {
                        4 + 0x1fff
                    } else {
                        MAX_PAYLOAD
                    };
                    assert!(
                        p.prefix.len as usize + p.payload.len() <= limit,
                        "{codec:?}"
                    );
                    let a = p.payload.as_ptr() as usize;
                    assert!(
                        p.payload.is_empty()
                            || (a >= base && a + p.payload.len() <= base + frame.data.len())
                    );
                }
            }
        }
    }
}
