//! WordPiece tokenisation for the local model: a thin wrapper over HF `tokenizers` that ignores the
//! truncation (128) and padding (fixed 128) stored in the packaged `tokenizer.json` and applies the
//! model's real limit, and exposes untruncated word-piece offsets for the chunker.

use std::path::Path;

use tokenizers::{TruncationDirection, TruncationParams, TruncationStrategy};

use crate::EmbedError;

/// Tokenizer of a BERT-style model.
pub struct Tokenizer {
    /// Truncates to `max_len` word pieces including special tokens; never pads.
    model_input: tokenizers::Tokenizer,
    /// Neither truncates nor pads; used for counting and offsets.
    plain: tokenizers::Tokenizer,
    max_len: usize,
    specials: usize,
}

impl std::fmt::Debug for Tokenizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tokenizer")
            .field("max_len", &self.max_len)
            .finish_non_exhaustive()
    }
}

fn tok_err(e: impl std::fmt::Display) -> EmbedError {
    EmbedError::Tokenizer(e.to_string())
}

impl Tokenizer {
    /// Loads `tokenizer.json`; model inputs are cut at `max_len` word pieces including the
    /// special tokens (`[CLS]`, `[SEP]`), as sentence-transformers does with `max_seq_length`.
    pub fn from_file(path: &Path, max_len: usize) -> Result<Self, EmbedError> {
        let bytes = std::fs::read(path).map_err(|source| EmbedError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        Self::from_bytes(&bytes, max_len)
    }

    /// Like [`Tokenizer::from_file`], from the file's bytes.
    pub fn from_bytes(bytes: &[u8], max_len: usize) -> Result<Self, EmbedError> {
        let mut plain = tokenizers::Tokenizer::from_bytes(bytes).map_err(tok_err)?;
        plain.with_padding(None);
        plain.with_truncation(None).map_err(tok_err)?;
        let specials = plain
            .get_post_processor()
            .map(|p| tokenizers::PostProcessor::added_tokens(p, false))
            .unwrap_or(0);
        if max_len <= specials {
            return Err(EmbedError::Config(format!(
                "max_len {max_len} leaves no room beside {specials} special tokens"
            )));
        }
        let mut model_input = plain.clone();
        model_input
            .with_truncation(Some(TruncationParams {
                max_length: max_len,
                strategy: TruncationStrategy::LongestFirst,
                direction: TruncationDirection::Right,
                stride: 0,
            }))
            .map_err(tok_err)?;
        Ok(Self {
            model_input,
            plain,
            max_len,
            specials,
        })
    }

    /// Model input ids: special tokens added, truncated at `max_len`.
    pub fn encode_for_model(&self, text: &str) -> Result<Vec<u32>, EmbedError> {
        let enc = self.model_input.encode(text, true).map_err(tok_err)?;
        Ok(enc.get_ids().to_vec())
    }

    /// Byte ranges in `text` of every word piece, without special tokens and without truncation.
    /// Adjacent pieces of one word (`##` continuations) get adjacent ranges; characters the model
    /// drops (whitespace, control characters) fall between ranges. Unknown characters map to the
    /// range of the `[UNK]` piece that replaced their word.
    pub fn tokenize_offsets(&self, text: &str) -> Result<Vec<(usize, usize)>, EmbedError> {
        let enc = self.plain.encode(text, false).map_err(tok_err)?;
        Ok(enc.get_offsets().to_vec())
    }

    /// Number of word pieces of `text`, without special tokens and without truncation.
    pub fn count_tokens(&self, text: &str) -> Result<usize, EmbedError> {
        let enc = self.plain.encode(text, false).map_err(tok_err)?;
        Ok(enc.len())
    }

    /// Model input limit in word pieces, special tokens included.
    pub fn max_len(&self) -> usize {
        self.max_len
    }

    /// Largest number of text word pieces embedded without truncation (`max_len` minus specials).
    pub fn max_text_tokens(&self) -> usize {
        self.max_len - self.specials
    }
}
