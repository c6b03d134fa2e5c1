//! The framing around Restate's opaque metadata bytes (`GetMetadataResponse.encoded`,
//! `ListLogsResponse.logs`): one codec byte, a little-endian u32 length, then the document.

use serde::de::DeserializeOwned;

const CODEC_FLEXBUFFERS: u8 = 2;
const HEADER_LEN: usize = 5;

/// Decodes a flexbuffers document out of its envelope into `T` (which names only the fields read).
pub(super) fn decode_flexbuffers<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, String> {
    let (&codec, rest) = bytes
        .split_first()
        .ok_or_else(|| "the answer is empty".to_owned())?;
    if codec != CODEC_FLEXBUFFERS {
        return Err(format!(
            "codec byte {codec}, expected {CODEC_FLEXBUFFERS} (flexbuffers)"
        ));
    }
    let length_bytes: [u8; 4] = rest
        .get(..4)
        .and_then(|b| b.try_into().ok())
        .ok_or_else(|| format!("{} bytes, too short for the header", bytes.len()))?;
    let length = u32::from_le_bytes(length_bytes) as usize;
    let document = bytes.get(HEADER_LEN..HEADER_LEN + length).ok_or_else(|| {
        format!(
            "header announces {length} bytes but {} follow",
            bytes.len() - HEADER_LEN
        )
    })?;
    flexbuffers::from_slice(document).map_err(|err| err.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(serde::Deserialize, Debug)]
    struct Versioned {
        version: u32,
    }

    fn framed(codec: u8, document: &[u8]) -> Vec<u8> {
        let mut bytes = vec![codec];
        bytes.extend_from_slice(&(document.len() as u32).to_le_bytes());
        bytes.extend_from_slice(document);
        bytes
    }

    fn document(version: u32) -> Vec<u8> {
        let mut builder = flexbuffers::Builder::default();
        let mut map = builder.start_map();
        map.push("version", version);
        map.end_map();
        builder.view().to_vec()
    }

    #[test]
    fn decodes_a_framed_document() {
        let decoded: Versioned = decode_flexbuffers(&framed(2, &document(7))).unwrap();
        assert_eq!(decoded.version, 7);
    }

    #[test]
    fn rejects_other_codecs_and_truncation() {
        let err = decode_flexbuffers::<Versioned>(&framed(1, &document(7))).unwrap_err();
        assert!(err.contains("codec byte 1"), "{err}");
        let mut truncated = framed(2, &document(7));
        truncated.pop();
        let err = decode_flexbuffers::<Versioned>(&truncated).unwrap_err();
        assert!(err.contains("announces"), "{err}");
        assert!(decode_flexbuffers::<Versioned>(&[]).is_err());
        assert!(decode_flexbuffers::<Versioned>(&[2, 1]).is_err());
    }
}
