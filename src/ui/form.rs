//! `application/x-www-form-urlencoded`: the bodies of the UI's forms and
//! its query strings, as ordered `(name, value)` pairs. Malformed escapes
//! are kept as they are rather than refused; invalid UTF-8 is replaced.

/// Form fields in the order sent (a name may repeat).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Form {
    pub fields: Vec<(String, String)>,
}

impl Form {
    pub fn parse(text: &str) -> Self {
        let fields = text
            .split('&')
            .filter(|pair| !pair.is_empty())
            .map(|pair| {
                let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
                (decode(name), decode(value))
            })
            .collect();
        Self { fields }
    }

    pub fn parse_bytes(bytes: &[u8]) -> Self {
        Self::parse(&String::from_utf8_lossy(bytes))
    }

    /// The first value of `name`.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// Every value of `name`, in order.
    pub fn all(&self, name: &str) -> Vec<&str> {
        self.fields
            .iter()
            .filter(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
            .collect()
    }
}

/// Percent-decoding; `+` is a space.
pub fn decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' => match bytes
                .get(i + 1..i + 3)
                .and_then(|hex| std::str::from_utf8(hex).ok())
                .and_then(|hex| u8::from_str_radix(hex, 16).ok())
            {
                Some(byte) => {
                    out.push(byte);
                    i += 2;
                }
                None => out.push(b'%'),
            },
            byte => out.push(byte),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_decode_in_order_and_repeat() {
        let form = Form::parse("param.n=7&run=a&run=b%2Fc&x=1+2&empty=&flag&%zz=%4&=v");
        assert_eq!(form.get("param.n"), Some("7"));
        assert_eq!(form.all("run"), ["a", "b/c"]);
        assert_eq!(form.get("x"), Some("1 2"));
        assert_eq!(form.get("empty"), Some(""));
        assert_eq!(form.get("flag"), Some(""));
        assert_eq!(form.get("%zz"), Some("%4"));
        assert_eq!(form.get(""), Some("v"));
        assert_eq!(form.get("missing"), None);
    }

    #[test]
    fn utf8_and_broken_utf8_decode_without_panicking() {
        assert_eq!(decode("caf%C3%A9"), "café");
        assert_eq!(decode("%FF%"), "\u{FFFD}%");
        assert_eq!(decode("%C3"), "\u{FFFD}");
        assert_eq!(decode("é%"), "é%");
    }
}
