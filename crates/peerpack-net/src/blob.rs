//! The blob exchange protocol (`/peerpack/blob/1.0.0`, request-response with a binary codec).
//!
//! A downloader first asks one provider for the archive's outline (the BLAKE3 chaining values
//! of its 1 MiB pieces, see `peerpack_core::outline`) and checks that it merges to the content
//! id. It then asks several providers for different pieces at once, and checks each piece
//! against the outline as it arrives. Any range may be asked for; downloaders ask for whole
//! pieces because only those can be checked on arrival.
//!
//! # Wire format ([`BlobCodec`])
//!
//! One request and one response per stream, little-endian, no framing beyond the stream:
//!
//! ```text
//! request  = 0x01 id                      Outline
//!          | 0x02 id offset:u64 length:u32  Range
//! id       = len:u8 (at most 64) bytes      (32 bytes for a valid content id)
//! response = 0x01 total_size:u64 len:u32 values[len]          Outline (len <= 4 MiB)
//!          | 0x02 offset:u64 total_size:u64 len:u32 data[len]  Chunk (len <= 1 MiB)
//!          | 0x03                                              NotFound
//!          | 0x04 len:u16 utf8[len]                            Refused (len <= 1024)
//! ```
//!
//! Every `len` counts bytes. An outline's `len` is 32 × the number of pieces: at most 4 MiB,
//! 131,072 pieces, an archive of 128 GiB.
//!
//! Chunk data is read straight into its buffer: no CBOR pass over a megabyte of bytes, and no
//! growing buffer, on either side.

use std::io;

use futures::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use libp2p::StreamProtocol;
use serde::{Deserialize, Serialize};
use serde_bytes::ByteBuf;

/// Protocol id of blob exchange.
pub const PROTOCOL: &str = "/peerpack/blob/1.0.0";
/// Largest range one request may ask for (1 MiB); larger requests are refused.
pub const MAX_CHUNK: u32 = 1024 * 1024;

/// A request for part of an archive.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum BlobRequest {
    /// The archive's size and outline.
    Outline {
        /// The content id's 32 raw bytes.
        content_id: ByteBuf,
    },
    /// `length` bytes of the archive from `offset`.
    Range {
        /// The content id's 32 raw bytes.
        content_id: ByteBuf,
        /// First byte wanted.
        offset: u64,
        /// Number of bytes wanted (1 to [`MAX_CHUNK`]).
        length: u32,
    },
}

impl BlobRequest {
    /// The content id's raw bytes, as sent.
    pub fn content_id(&self) -> &[u8] {
        match self {
            Self::Outline { content_id } | Self::Range { content_id, .. } => content_id,
        }
    }

    /// `outline` or `range`, for logs and spans.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Outline { .. } => "outline",
            Self::Range { .. } => "range",
        }
    }

    /// The first byte a range asks for.
    pub fn offset(&self) -> Option<u64> {
        match self {
            Self::Outline { .. } => None,
            Self::Range { offset, .. } => Some(*offset),
        }
    }
}

/// The answer to a [`BlobRequest`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum BlobResponse {
    /// The answer to [`BlobRequest::Outline`].
    Outline {
        /// Size of the whole archive.
        total_size: u64,
        /// The chaining values of its pieces, 32 bytes each, concatenated (32 × pieces bytes).
        values: ByteBuf,
    },
    /// The bytes from `offset`; shorter than asked only at the end of the archive.
    Chunk {
        /// Echo of the request's offset.
        offset: u64,
        /// Size of the whole archive.
        total_size: u64,
        /// The bytes.
        data: ByteBuf,
    },
    /// This peer does not hold the archive.
    NotFound,
    /// The request is invalid (range past the end, too long, malformed id) or the peer is
    /// busy; the text says which.
    Refused(String),
}

/// Largest outline a response may carry: 4 MiB of values, an archive of 128 GiB.
pub const MAX_OUTLINE: u32 = 4 * 1024 * 1024;
/// Longest content id field accepted in a request (a valid one has 32 bytes).
const MAX_ID: usize = 64;
/// Longest refusal text.
const MAX_REASON: usize = 1024;

/// The request-response codec of blob exchange (see the module docs for the format).
#[derive(Debug, Clone, Copy, Default)]
pub struct BlobCodec;

fn invalid(what: impl Into<String>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, what.into())
}

async fn read_u8<T: AsyncRead + Unpin>(io: &mut T) -> io::Result<u8> {
    let mut b = [0u8; 1];
    io.read_exact(&mut b).await?;
    Ok(b[0])
}

async fn read_u16<T: AsyncRead + Unpin>(io: &mut T) -> io::Result<u16> {
    let mut b = [0u8; 2];
    io.read_exact(&mut b).await?;
    Ok(u16::from_le_bytes(b))
}

async fn read_u32<T: AsyncRead + Unpin>(io: &mut T) -> io::Result<u32> {
    let mut b = [0u8; 4];
    io.read_exact(&mut b).await?;
    Ok(u32::from_le_bytes(b))
}

async fn read_u64<T: AsyncRead + Unpin>(io: &mut T) -> io::Result<u64> {
    let mut b = [0u8; 8];
    io.read_exact(&mut b).await?;
    Ok(u64::from_le_bytes(b))
}

async fn read_bytes<T: AsyncRead + Unpin>(io: &mut T, len: usize) -> io::Result<Vec<u8>> {
    let mut buf = vec![0u8; len];
    io.read_exact(&mut buf).await?;
    Ok(buf)
}

async fn read_id<T: AsyncRead + Unpin>(io: &mut T) -> io::Result<ByteBuf> {
    let len = usize::from(read_u8(io).await?);
    if len > MAX_ID {
        return Err(invalid(format!("content id field of {len} bytes")));
    }
    Ok(ByteBuf::from(read_bytes(io, len).await?))
}

fn id_field(id: &[u8]) -> io::Result<Vec<u8>> {
    let len = u8::try_from(id.len())
        .ok()
        .filter(|l| usize::from(*l) <= MAX_ID)
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "content id too long"))?;
    let mut out = Vec::with_capacity(1 + id.len());
    out.push(len);
    out.extend_from_slice(id);
    Ok(out)
}

impl libp2p::request_response::Codec for BlobCodec {
    type Protocol = StreamProtocol;
    type Request = BlobRequest;
    type Response = BlobResponse;

    async fn read_request<T>(&mut self, _: &StreamProtocol, io: &mut T) -> io::Result<BlobRequest>
    where
        T: AsyncRead + Unpin + Send,
    {
        match read_u8(io).await? {
            1 => Ok(BlobRequest::Outline {
                content_id: read_id(io).await?,
            }),
            2 => {
                let content_id = read_id(io).await?;
                let offset = read_u64(io).await?;
                let length = read_u32(io).await?;
                Ok(BlobRequest::Range {
                    content_id,
                    offset,
                    length,
                })
            }
            t => Err(invalid(format!("unknown blob request type {t}"))),
        }
    }

    async fn read_response<T>(&mut self, _: &StreamProtocol, io: &mut T) -> io::Result<BlobResponse>
    where
        T: AsyncRead + Unpin + Send,
    {
        match read_u8(io).await? {
            1 => {
                let total_size = read_u64(io).await?;
                let len = read_u32(io).await?;
                if len > MAX_OUTLINE {
                    return Err(invalid(format!("outline of {len} bytes")));
                }
                Ok(BlobResponse::Outline {
                    total_size,
                    values: ByteBuf::from(read_bytes(io, len as usize).await?),
                })
            }
            2 => {
                let offset = read_u64(io).await?;
                let total_size = read_u64(io).await?;
                let len = read_u32(io).await?;
                if len > MAX_CHUNK {
                    return Err(invalid(format!("chunk of {len} bytes")));
                }
                Ok(BlobResponse::Chunk {
                    offset,
                    total_size,
                    data: ByteBuf::from(read_bytes(io, len as usize).await?),
                })
            }
            3 => Ok(BlobResponse::NotFound),
            4 => {
                let len = usize::from(read_u16(io).await?);
                if len > MAX_REASON {
                    return Err(invalid(format!("refusal of {len} bytes")));
                }
                let text = read_bytes(io, len).await?;
                Ok(BlobResponse::Refused(
                    String::from_utf8_lossy(&text).into_owned(),
                ))
            }
            t => Err(invalid(format!("unknown blob response type {t}"))),
        }
    }

    async fn write_request<T>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
        req: BlobRequest,
    ) -> io::Result<()>
    where
        T: AsyncWrite + Unpin + Send,
    {
        let mut out = Vec::with_capacity(48);
        match &req {
            BlobRequest::Outline { content_id } => {
                out.push(1);
                out.extend_from_slice(&id_field(content_id)?);
            }
            BlobRequest::Range {
                content_id,
                offset,
                length,
            } => {
                out.push(2);
                out.extend_from_slice(&id_field(content_id)?);
                out.extend_from_slice(&offset.to_le_bytes());
                out.extend_from_slice(&length.to_le_bytes());
            }
        }
        io.write_all(&out).await?;
        io.flush().await
    }

    async fn write_response<T>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
        res: BlobResponse,
    ) -> io::Result<()>
    where
        T: AsyncWrite + Unpin + Send,
    {
        let too_long = || io::Error::new(io::ErrorKind::InvalidInput, "blob response too long");
        match res {
            BlobResponse::Outline { total_size, values } => {
                let len = u32::try_from(values.len())
                    .ok()
                    .filter(|l| *l <= MAX_OUTLINE)
                    .ok_or_else(too_long)?;
                let mut head = vec![1u8];
                head.extend_from_slice(&total_size.to_le_bytes());
                head.extend_from_slice(&len.to_le_bytes());
                io.write_all(&head).await?;
                io.write_all(&values).await?;
            }
            BlobResponse::Chunk {
                offset,
                total_size,
                data,
            } => {
                let len = u32::try_from(data.len())
                    .ok()
                    .filter(|l| *l <= MAX_CHUNK)
                    .ok_or_else(too_long)?;
                let mut head = vec![2u8];
                head.extend_from_slice(&offset.to_le_bytes());
                head.extend_from_slice(&total_size.to_le_bytes());
                head.extend_from_slice(&len.to_le_bytes());
                io.write_all(&head).await?;
                io.write_all(&data).await?;
            }
            BlobResponse::NotFound => io.write_all(&[3]).await?,
            BlobResponse::Refused(reason) => {
                let mut end = reason.len().min(MAX_REASON);
                while !reason.is_char_boundary(end) {
                    end -= 1;
                }
                let mut out = vec![4u8];
                out.extend_from_slice(&(end as u16).to_le_bytes());
                out.extend_from_slice(&reason.as_bytes()[..end]);
                io.write_all(&out).await?;
            }
        }
        io.flush().await
    }
}

#[cfg(test)]
mod tests {
    use libp2p::request_response::Codec;

    use super::*;

    fn protocol() -> StreamProtocol {
        StreamProtocol::new(PROTOCOL)
    }

    async fn request_round_trip(req: BlobRequest) -> io::Result<BlobRequest> {
        let mut buf = Vec::new();
        BlobCodec.write_request(&protocol(), &mut buf, req).await?;
        BlobCodec.read_request(&protocol(), &mut &buf[..]).await
    }

    async fn response_round_trip(res: BlobResponse) -> io::Result<BlobResponse> {
        let mut buf = Vec::new();
        BlobCodec.write_response(&protocol(), &mut buf, res).await?;
        BlobCodec.read_response(&protocol(), &mut &buf[..]).await
    }

    #[test]
    fn every_message_round_trips_and_oversized_ones_are_refused() {
        futures::executor::block_on(async {
            let id = ByteBuf::from(vec![7u8; 32]);
            for req in [
                BlobRequest::Outline {
                    content_id: id.clone(),
                },
                BlobRequest::Range {
                    content_id: ByteBuf::from(vec![1u8; 5]),
                    offset: 1 << 40,
                    length: MAX_CHUNK,
                },
            ] {
                assert_eq!(request_round_trip(req.clone()).await.unwrap(), req);
            }
            for res in [
                BlobResponse::Outline {
                    total_size: 3 << 20,
                    values: ByteBuf::from(vec![9u8; 96]),
                },
                BlobResponse::Chunk {
                    offset: 1 << 20,
                    total_size: 3 << 20,
                    data: ByteBuf::from(vec![5u8; MAX_CHUNK as usize]),
                },
                BlobResponse::NotFound,
                BlobResponse::Refused("busy: try again".into()),
            ] {
                assert_eq!(response_round_trip(res.clone()).await.unwrap(), res);
            }
            // A peer announcing more than a chunk is cut off before anything is allocated.
            let mut forged = vec![2u8];
            forged.extend_from_slice(&0u64.to_le_bytes());
            forged.extend_from_slice(&0u64.to_le_bytes());
            forged.extend_from_slice(&(MAX_CHUNK + 1).to_le_bytes());
            let err = BlobCodec
                .read_response(&protocol(), &mut &forged[..])
                .await
                .unwrap_err();
            assert_eq!(err.kind(), io::ErrorKind::InvalidData);
            // An outline's length is a byte count (32 per piece), capped at 4 MiB.
            let mut buf = Vec::new();
            let values = ByteBuf::from(vec![3u8; 32 * 5]);
            BlobCodec
                .write_response(
                    &protocol(),
                    &mut buf,
                    BlobResponse::Outline {
                        total_size: 5 << 20,
                        values,
                    },
                )
                .await
                .unwrap();
            assert_eq!(buf[9..13], 160u32.to_le_bytes());
            assert_eq!(buf.len(), 13 + 160);
            let mut forged = vec![1u8];
            forged.extend_from_slice(&0u64.to_le_bytes());
            forged.extend_from_slice(&(MAX_OUTLINE + 1).to_le_bytes());
            let err = BlobCodec
                .read_response(&protocol(), &mut &forged[..])
                .await
                .unwrap_err();
            assert_eq!(err.kind(), io::ErrorKind::InvalidData);
            // Truncated data is an error, not a short chunk.
            let mut buf = Vec::new();
            BlobCodec
                .write_response(
                    &protocol(),
                    &mut buf,
                    BlobResponse::Chunk {
                        offset: 0,
                        total_size: 10,
                        data: ByteBuf::from(vec![1u8; 10]),
                    },
                )
                .await
                .unwrap();
            buf.truncate(buf.len() - 1);
            assert!(
                BlobCodec
                    .read_response(&protocol(), &mut &buf[..])
                    .await
                    .is_err()
            );
            assert!(
                request_round_trip(BlobRequest::Outline {
                    content_id: ByteBuf::from(vec![0u8; 65])
                })
                .await
                .is_err()
            );
        });
    }
}
