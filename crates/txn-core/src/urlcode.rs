//! Python's `urllib.parse.unquote_plus` (how both handlers decode S3 event keys).

/// `+` becomes a space, then `%XX` escapes are decoded as UTF-8 (invalid sequences become
/// U+FFFD, as with `errors="replace"`); a `%` not followed by two hex digits stays as is.
pub fn unquote_plus(text: &str) -> String {
    if !text.contains(['%', '+']) {
        return text.to_owned();
    }
    let bytes = text.as_bytes();
    let mut out: Vec<u8> = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b'%' => {
                let hex = bytes.get(i + 1..i + 3).and_then(|h| {
                    let h = std::str::from_utf8(h).ok()?;
                    if h.bytes().all(|b| b.is_ascii_hexdigit()) {
                        u8::from_str_radix(h, 16).ok()
                    } else {
                        None
                    }
                });
                match hex {
                    Some(b) => {
                        out.push(b);
                        i += 3;
                    }
                    None => {
                        out.push(b'%');
                        i += 1;
                    }
                }
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_like_python() {
        assert_eq!(unquote_plus("in/my+file%2B1.csv"), "in/my file+1.csv");
        assert_eq!(
            unquote_plus("in/%C3%9Cberweisungen+M%C3%A4rz+%281%29+%26+co%3Dok%2C+100%25.json"),
            "in/Überweisungen März (1) & co=ok, 100%.json"
        );
        assert_eq!(unquote_plus("a%zz%4"), "a%zz%4");
        assert_eq!(unquote_plus("%FF"), "\u{FFFD}");
        assert_eq!(unquote_plus("plain/key.csv"), "plain/key.csv");
    }
}
