//! Reading a price file (a TOML price table or a `genai-prices` `data.json`), bounded: what
//! both the override rows and the data read.

use std::path::Path;

use crate::money::PricingError;

/// The largest price file read (16 MiB: the shipped `genai-prices` data is about 1 MiB).
pub const MAX_PRICE_FILE_BYTES: u64 = 16 << 20;

/// The text of the price file at `path` (TOML, or `genai-prices` JSON), read within
/// [`MAX_PRICE_FILE_BYTES`]: a device, a FIFO or a directory is refused before reading (it
/// would be read forever, or block), and so is a file too large.
pub(crate) fn read_price_file(path: &Path) -> Result<String, PricingError> {
    let refuse = |reason: String| PricingError::Read {
        file: path.display().to_string(),
        reason,
    };
    let metadata = std::fs::metadata(path).map_err(|error| refuse(error.to_string()))?;
    if !metadata.is_file() {
        return Err(refuse(
            "not a regular file (a device, FIFO or directory): name a price file".to_owned(),
        ));
    }
    if metadata.len() > MAX_PRICE_FILE_BYTES {
        return Err(refuse(format!(
            "{} bytes; a price file is at most {} MiB",
            metadata.len(),
            MAX_PRICE_FILE_BYTES >> 20
        )));
    }
    let mut text = String::new();
    std::io::Read::read_to_string(
        &mut std::io::Read::take(
            std::fs::File::open(path).map_err(|error| refuse(error.to_string()))?,
            MAX_PRICE_FILE_BYTES + 1,
        ),
        &mut text,
    )
    .map_err(|error| refuse(error.to_string()))?;
    if text.len() as u64 > MAX_PRICE_FILE_BYTES {
        return Err(refuse(format!(
            "it grew past {} MiB while read",
            MAX_PRICE_FILE_BYTES >> 20
        )));
    }
    Ok(text)
}
