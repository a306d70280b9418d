//! The text the keyword index sees, and the terms a keyword query asks for. Both sides go through
//! the same normalisation so that identifiers, code and non-Latin scripts stay findable with
//! SQLite FTS5's `unicode61` tokenizer (which splits on `_`, `-`, `.` and keeps a run of CJK
//! characters as one token):
//! - every CJK / kana / hangul character becomes its own token (unigram indexing);
//! - a compound identifier (`parse_pdf_tables`, `ABC-123`, `camelCase`, `foo.bar`) is indexed both
//!   as its parts and as one joined token (`parsepdftables`), so both spellings match.

/// True for characters of scripts written without spaces between words.
fn is_cjk(c: char) -> bool {
    matches!(c as u32,
        0x3040..=0x30FF      // hiragana, katakana
        | 0x3400..=0x4DBF    // CJK extension A
        | 0x4E00..=0x9FFF    // CJK unified ideographs
        | 0xAC00..=0xD7AF    // hangul syllables
        | 0xF900..=0xFAFF    // CJK compatibility ideographs
        | 0x20000..=0x2FFFF) // CJK extensions B+
}

fn is_joiner(c: char) -> bool {
    matches!(c, '_' | '-' | '.' | '/' | ':' | '#' | '@')
}

/// Splits a camelCase / PascalCase / digit-boundary word into parts (`parsePDFTables2` →
/// `parse`, `PDF`, `Tables`, `2`).
fn camel_parts(word: &str) -> Vec<&str> {
    let chars: Vec<(usize, char)> = word.char_indices().collect();
    let mut parts = Vec::new();
    let mut start = 0;
    for i in 1..chars.len() {
        let (pos, c) = chars[i];
        let prev = chars[i - 1].1;
        let next_lower = chars.get(i + 1).is_some_and(|(_, n)| n.is_lowercase());
        let boundary = (prev.is_lowercase() && c.is_uppercase())
            || (prev.is_uppercase() && c.is_uppercase() && next_lower)
            || (prev.is_alphabetic() && c.is_ascii_digit())
            || (prev.is_ascii_digit() && c.is_alphabetic());
        if boundary {
            parts.push(&word[start..pos]);
            start = pos;
        }
    }
    parts.push(&word[start..]);
    parts
}

/// Text as it goes into the keyword index: the original text (so stemming and phrases work),
/// with CJK characters spaced apart, plus a trailing line of joined forms of compound
/// identifiers and camelCase parts.
pub fn index_text(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + text.len() / 8);
    let mut extra: Vec<String> = Vec::new();
    for token in text.split_whitespace() {
        if !out.is_empty() {
            out.push(' ');
        }
        push_spaced_cjk(&mut out, token);
        extra.extend(expansions(token));
    }
    if !extra.is_empty() {
        out.push('\n');
        out.push_str(&extra.join(" "));
    }
    out
}

/// A keyword query's text, normalised the same way (CJK spaced; compound identifiers kept as
/// parts, which the index also holds).
pub fn query_text(query: &str) -> String {
    let mut out = String::with_capacity(query.len() + 8);
    for token in query.split_whitespace() {
        if !out.is_empty() {
            out.push(' ');
        }
        push_spaced_cjk(&mut out, token);
    }
    out
}

fn push_spaced_cjk(out: &mut String, token: &str) {
    let mut prev_cjk = false;
    for c in token.chars() {
        let cjk = is_cjk(c);
        if (cjk || prev_cjk) && !out.is_empty() && !out.ends_with(' ') {
            out.push(' ');
        }
        out.push(c);
        prev_cjk = cjk;
    }
}

/// Extra index tokens for one whitespace-separated token: the joined form of a compound
/// identifier, and the camelCase parts of each piece.
fn expansions(token: &str) -> Vec<String> {
    let trimmed = token.trim_matches(|c: char| !c.is_alphanumeric());
    if trimmed.is_empty() || trimmed.chars().any(is_cjk) {
        return Vec::new();
    }
    let mut out = Vec::new();
    let pieces: Vec<&str> = trimmed.split(is_joiner).filter(|p| !p.is_empty()).collect();
    if pieces.len() > 1 && pieces.iter().all(|p| p.chars().all(char::is_alphanumeric)) {
        out.push(pieces.concat());
    }
    for piece in pieces {
        if piece.chars().all(char::is_alphanumeric) {
            let parts = camel_parts(piece);
            if parts.len() > 1 {
                out.extend(parts.into_iter().map(str::to_string));
            }
        }
    }
    out
}

/// The keyword analyzer of the in-memory keyword index: splits normalised text (the output of
/// [`index_text`] or [`query_text`]) into terms the way FTS5's `unicode61 remove_diacritics 2`
/// tokenizer does (runs of letters and digits; everything else separates), lower-cases them,
/// folds diacritics (`café` → `cafe`) and applies the Snowball English stemmer. One analyzer
/// serves documents and queries, so both sides always agree.
pub struct Analyzer {
    stemmer: rust_stemmers::Stemmer,
    buf: String,
}

impl Default for Analyzer {
    fn default() -> Self {
        Analyzer::new()
    }
}

impl Analyzer {
    /// A new analyzer (cheap; keep one per thread or per batch to reuse its buffer).
    pub fn new() -> Analyzer {
        Analyzer {
            stemmer: rust_stemmers::Stemmer::create(rust_stemmers::Algorithm::English),
            buf: String::new(),
        }
    }

    /// Calls `emit` with every term of `text`, in order (duplicates included).
    pub fn terms(&mut self, text: &str, mut emit: impl FnMut(&str)) {
        for raw in text.split(|c: char| !c.is_alphanumeric()) {
            self.buf.clear();
            fold(raw, &mut self.buf);
            if !self.buf.is_empty() {
                emit(&self.stemmer.stem(&self.buf));
            }
        }
    }

    /// The lower-cased, diacritic-folded (unstemmed) words of `text`, for stopword checks.
    pub fn words(text: &str) -> Vec<String> {
        let mut out = Vec::new();
        for raw in text.split(|c: char| !c.is_alphanumeric()) {
            let mut w = String::with_capacity(raw.len());
            fold(raw, &mut w);
            if !w.is_empty() {
                out.push(w);
            }
        }
        out
    }

    /// Stems one already-folded word.
    pub fn stem<'a>(&self, word: &'a str) -> std::borrow::Cow<'a, str> {
        self.stemmer.stem(word)
    }
}

/// Appends `raw` lower-cased, with combining marks removed after canonical decomposition
/// (ASCII words take the fast path).
fn fold(raw: &str, out: &mut String) {
    use unicode_normalization::UnicodeNormalization;
    if raw.is_ascii() {
        out.extend(raw.chars().map(|c| c.to_ascii_lowercase()));
        return;
    }
    for c in raw.nfd() {
        if unicode_normalization::char::is_combining_mark(c) {
            continue;
        }
        out.extend(c.to_lowercase());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn analyze(text: &str) -> Vec<String> {
        let mut a = Analyzer::new();
        let mut out = Vec::new();
        a.terms(text, |t| out.push(t.to_string()));
        out
    }

    #[test]
    fn analyzer_stems_folds_and_splits() {
        assert_eq!(
            analyze("Running cells, CAFÉ naïve—x_y 42"),
            ["run", "cell", "cafe", "naiv", "x", "y", "42"]
        );
        // documents and queries meet on the same terms
        assert_eq!(analyze(&index_text("connections")), analyze("connected"));
        assert_eq!(analyze(&query_text("東京")), ["東", "京"]);
        assert_eq!(Analyzer::words("Über the"), ["uber", "the"]);
    }

    #[test]
    fn cjk_is_unigram() {
        assert_eq!(query_text("東京タワー"), "東 京 タ ワ ー");
        assert_eq!(index_text("in 東京 today"), "in 東 京 today");
    }

    #[test]
    fn identifiers_are_indexed_joined_and_split() {
        let t = index_text("call parse_pdf_tables on ABC-123 via getUserName()");
        assert!(t.starts_with("call parse_pdf_tables on ABC-123 via getUserName()"));
        let extra = t.lines().nth(1).unwrap();
        for w in ["parsepdftables", "ABC123", "get", "User", "Name"] {
            assert!(extra.split(' ').any(|x| x == w), "{w} missing in {extra}");
        }
        assert_eq!(
            camel_parts("parsePDFTables2"),
            ["parse", "PDF", "Tables", "2"]
        );
    }

    #[test]
    fn plain_prose_gets_no_extra_line() {
        assert_eq!(index_text("Hello, world."), "Hello, world.");
    }
}
