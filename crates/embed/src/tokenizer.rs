//! WordPiece tokenisation for the local model: a thin wrapper over HF `tokenizers` that ignores the
//! truncation (128) and padding (fixed 128) stored in the packaged `tokenizer.json` and applies the
//! model's real limit, and exposes untruncated word-piece offsets for the chunker.

use std::path::Path;

use tokenizers::{
    NormalizerWrapper, PreTokenizerWrapper, TruncationDirection, TruncationParams,
    TruncationStrategy,
};

use crate::EmbedError;

/// Largest piece of text encoded at once for offsets and counts. HF `tokenizers` keeps several
/// words of bookkeeping per input byte while encoding (alignments, per-split strings, one
/// `String` per word piece): a 3.7 MB text peaked at ~440 MB. Encoding in pieces cut at
/// whitespace keeps that transient memory at a few MB whatever the document's size.
pub const ENCODE_PIECE_BYTES: usize = 64 * 1024;

/// Tokenizer of a BERT-style model.
pub struct Tokenizer {
    /// Truncates to `max_len` word pieces including special tokens; never pads.
    model_input: tokenizers::Tokenizer,
    /// Neither truncates nor pads; used for counting and offsets.
    plain: tokenizers::Tokenizer,
    max_len: usize,
    specials: usize,
    /// The normaliser and pre-tokeniser are BERT's, so a cut at an ASCII space or newline
    /// between words changes no word piece (see `pieces`).
    splittable: bool,
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
        // BERT's normaliser maps ' ' and '\n' to ' ' (never drops them) and its pre-tokeniser
        // splits there, so a cut right after one of them starts a new word on both sides.
        let splittable = matches!(
            plain.get_normalizer(),
            None | Some(NormalizerWrapper::BertNormalizer(_))
        ) && matches!(
            plain.get_pre_tokenizer(),
            Some(PreTokenizerWrapper::BertPreTokenizer(_))
        );
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
            splittable,
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
    /// range of the `[UNK]` piece that replaced their word. Long texts are encoded in pieces of
    /// about [`ENCODE_PIECE_BYTES`] (same result, bounded memory).
    pub fn tokenize_offsets(&self, text: &str) -> Result<Vec<(usize, usize)>, EmbedError> {
        self.tokenize_offsets_in(text, ENCODE_PIECE_BYTES)
    }

    fn tokenize_offsets_in(
        &self,
        text: &str,
        piece_bytes: usize,
    ) -> Result<Vec<(usize, usize)>, EmbedError> {
        let mut out = Vec::new();
        for (base, piece) in self.pieces(text, piece_bytes) {
            let enc = self.plain.encode(piece, false).map_err(tok_err)?;
            out.extend(enc.get_offsets().iter().map(|&(s, e)| (base + s, base + e)));
        }
        Ok(out)
    }

    /// Number of word pieces of `text`, without special tokens and without truncation.
    pub fn count_tokens(&self, text: &str) -> Result<usize, EmbedError> {
        self.count_tokens_in(text, ENCODE_PIECE_BYTES)
    }

    fn count_tokens_in(&self, text: &str, piece_bytes: usize) -> Result<usize, EmbedError> {
        let mut n = 0;
        for (_, piece) in self.pieces(text, piece_bytes) {
            n += self.plain.encode(piece, false).map_err(tok_err)?.len();
        }
        Ok(n)
    }

    /// `text` as (byte offset, piece) with pieces of at most `max` bytes where possible, each
    /// cut right after an ASCII space or newline (the whole text for tokenizers that are not
    /// BERT's, whose words could span such a cut).
    fn pieces<'a>(&self, text: &'a str, max: usize) -> Vec<(usize, &'a str)> {
        if !self.splittable {
            return vec![(0, text)];
        }
        split_at_spaces(text, max)
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

/// Cuts `text` into consecutive pieces of at most `max` bytes, each ending right after an
/// ASCII space or newline (the last one excepted); a stretch longer than `max` without either
/// stays whole up to the next one. Returns (byte offset, piece); the pieces concatenate to
/// `text`.
fn split_at_spaces(text: &str, max: usize) -> Vec<(usize, &str)> {
    let bytes = text.as_bytes();
    let is_cut = |b: &u8| *b == b' ' || *b == b'\n';
    let mut out = Vec::new();
    let mut start = 0;
    while bytes.len() - start > max.max(1) {
        let window = &bytes[start..start + max.max(1)];
        // ASCII bytes never occur inside a multi-byte UTF-8 sequence: every cut is a char
        // boundary
        let cut = match window.iter().rposition(is_cut) {
            Some(i) => start + i + 1,
            None => match bytes[start + window.len()..].iter().position(is_cut) {
                Some(i) => start + window.len() + i + 1,
                None => break,
            },
        };
        out.push((start, &text[start..cut]));
        start = cut;
    }
    if start < bytes.len() || out.is_empty() {
        out.push((start, &text[start..]));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pieces_are_cut_after_spaces_and_cover_the_text() {
        let text = "ab cd\nefgh  ijklmnopq r é";
        for max in [1, 2, 3, 4, 7, 100] {
            let p = split_at_spaces(text, max);
            let joined: String = p.iter().map(|(_, s)| *s).collect();
            assert_eq!(joined, text, "max {max}");
            for (i, &(off, s)) in p.iter().enumerate() {
                assert_eq!(&text[off..off + s.len()], s);
                if i + 1 < p.len() {
                    assert!(s.ends_with(' ') || s.ends_with('\n'), "{s:?}");
                    assert!(s.len() <= max || !s[..s.len() - 1].contains([' ', '\n']));
                }
            }
        }
        assert_eq!(split_at_spaces("", 4), vec![(0, "")]);
        assert_eq!(split_at_spaces("abcdefgh", 4), vec![(0, "abcdefgh")]);
    }

    fn model_tokenizer() -> Option<Tokenizer> {
        let dir = match std::env::var_os("CARBIDE_MODEL_DIR") {
            Some(d) => std::path::PathBuf::from(d),
            None => std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
                .join("../../models/all-MiniLM-L6-v2"),
        };
        let path = dir.join("tokenizer.json");
        if !path.is_file() {
            assert!(
                std::env::var_os("CARBIDE_REQUIRE_MODEL").is_none(),
                "CARBIDE_REQUIRE_MODEL is set but {} is missing",
                path.display()
            );
            eprintln!(
                "SKIPPED: no {} (run scripts/fetch-model.sh)",
                path.display()
            );
            return None;
        }
        Some(Tokenizer::from_file(&path, 256).expect("tokenizer loads"))
    }

    #[test]
    fn encoding_in_pieces_equals_encoding_whole() {
        let Some(tok) = model_tokenizer() else { return };
        assert!(
            tok.splittable,
            "MiniLM uses BERT's normaliser and pre-tokeniser"
        );
        let mut text = String::new();
        for i in 0..300 {
            text.push_str(&format!(
                "Naïve café {i} übertrieben, ((x+y)) [MASK] 東京タワー \u{85}ab\u{85}cd e\u{301}f\ttab\r\n  \
                 antidisestablishmentarianism{i} \u{200b}zero-width ЖЁлтый\n\n"
            ));
        }
        let whole = tok.plain.encode(text.as_str(), false).expect("encode");
        let whole_offsets = whole.get_offsets().to_vec();
        for piece in [1, 7, 64, 1000, 4096] {
            assert_eq!(
                tok.tokenize_offsets_in(&text, piece).expect("offsets"),
                whole_offsets,
                "piece size {piece}"
            );
            assert_eq!(
                tok.count_tokens_in(&text, piece).expect("count"),
                whole.len()
            );
        }
        assert_eq!(tok.tokenize_offsets(&text).expect("offsets"), whole_offsets);
        assert_eq!(tok.count_tokens(&text).expect("count"), whole.len());
    }
}
