//! HTML as text, escaped by default. Every page is written with [`html!`],
//! whose template is a string literal and whose values go in through
//! [`Markup`]: text (`str`, `String`) is always escaped, numbers print as
//! they are, and only an [`Html`] fragment — itself built the same way — is
//! inserted as markup. So user-controlled text cannot become markup unless
//! someone writes a new `Markup` impl that skips the escaping.
//!
//! [`Seg`] and [`Query`] percent-encode a URL path segment or query value;
//! their output contains no character HTML treats specially.

use std::fmt::Write as _;

/// A fragment of markup: built from literals and escaped values only.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Html(String);

impl Html {
    pub fn new() -> Self {
        Self(String::new())
    }

    pub fn with_capacity(bytes: usize) -> Self {
        Self(String::with_capacity(bytes))
    }

    /// A fragment of fixed markup written in the source.
    pub fn from_static(markup: &'static str) -> Self {
        Self(markup.to_string())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn into_string(self) -> String {
        self.0
    }

    pub fn push(&mut self, fragment: &Html) {
        self.0.push_str(&fragment.0);
    }

    /// Appends `template`, replacing each `{}` with the next value.
    /// Placeholders without a value stay empty; values without a
    /// placeholder are dropped (the `html!` macro's callers are tested).
    pub fn render(&mut self, template: &'static str, values: &[&dyn Markup]) {
        let mut values = values.iter();
        let mut rest = template;
        while let Some(at) = rest.find("{}") {
            self.0.push_str(&rest[..at]);
            if let Some(value) = values.next() {
                value.write_to(&mut self.0);
            }
            rest = &rest[at + 2..];
        }
        self.0.push_str(rest);
    }
}

/// Appends markup to an [`Html`]: `html!(out, "<td>{}</td>", name)`.
macro_rules! html {
    ($out:expr, $template:literal $(, $value:expr)* $(,)?) => {
        $out.render($template, &[$(&$value as &dyn $crate::ui::html::Markup),*])
    };
}
pub(crate) use html;

/// A value that can go into a template.
pub trait Markup {
    fn write_to(&self, out: &mut String);
}

impl Markup for str {
    fn write_to(&self, out: &mut String) {
        escape_into(out, self);
    }
}

impl Markup for String {
    fn write_to(&self, out: &mut String) {
        escape_into(out, self);
    }
}

impl<T: Markup + ?Sized> Markup for &T {
    fn write_to(&self, out: &mut String) {
        (**self).write_to(out);
    }
}

impl<T: Markup> Markup for Option<T> {
    fn write_to(&self, out: &mut String) {
        if let Some(value) = self {
            value.write_to(out);
        }
    }
}

impl Markup for Html {
    fn write_to(&self, out: &mut String) {
        out.push_str(&self.0);
    }
}

macro_rules! plain_number {
    ($($t:ty),*) => {$(
        impl Markup for $t {
            fn write_to(&self, out: &mut String) {
                let _ = write!(out, "{self}");
            }
        }
    )*};
}
plain_number!(u8, u16, u32, u64, usize, i32, i64);

/// Floating point numbers as `{:.N}`: `Fixed(0.98712, 3)` → `0.987`.
pub struct Fixed(pub f64, pub usize);

impl Markup for Fixed {
    fn write_to(&self, out: &mut String) {
        if self.0.is_finite() {
            let _ = write!(out, "{:.*}", self.1, self.0);
        } else {
            out.push('–');
        }
    }
}

/// A URL path segment, percent-encoded.
pub struct Seg<'a>(pub &'a str);

impl Markup for Seg<'_> {
    fn write_to(&self, out: &mut String) {
        percent_encode(out, self.0);
    }
}

/// A URL query value, percent-encoded.
pub struct Query<'a>(pub &'a str);

impl Markup for Query<'_> {
    fn write_to(&self, out: &mut String) {
        percent_encode(out, self.0);
    }
}

fn percent_encode(out: &mut String, text: &str) {
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || b"-_.~".contains(&byte) {
            out.push(byte as char);
        } else {
            let _ = write!(out, "%{byte:02X}");
        }
    }
}

fn escape_into(out: &mut String, text: &str) {
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOSTILE: &str = "<script>alert(1)</script>\"><img src=x onerror='alert(2)'>&amp;";

    #[test]
    fn text_is_escaped_for_content_and_attributes() {
        let mut escaped = String::new();
        escape_into(&mut escaped, HOSTILE);
        assert_eq!(
            escaped,
            "&lt;script&gt;alert(1)&lt;/script&gt;&quot;&gt;&lt;img src=x onerror=&#39;alert(2)&#39;&gt;&amp;amp;"
        );
        for forbidden in ['<', '>', '"', '\''] {
            assert!(!escaped.contains(forbidden), "{forbidden} in {escaped}");
        }
    }

    #[test]
    fn templates_escape_strings_and_insert_fragments_as_markup() {
        let mut inner = Html::new();
        html!(inner, "<b>{}</b>", HOSTILE);
        let mut page = Html::new();
        let owned = String::from("<i>");
        html!(
            page,
            "<p title=\"{}\">{} {} {}</p>",
            HOSTILE,
            inner,
            owned,
            42u32
        );
        let text = page.as_str();
        assert!(text.starts_with("<p title=\"&lt;script&gt;"), "{text}");
        assert!(text.contains("<b>&lt;script&gt;"), "{text}");
        assert!(text.contains("&lt;i&gt; 42</p>"), "{text}");
        assert_eq!(text.matches("<b>").count(), 1);
        assert!(!text.contains("<script"), "{text}");
        assert!(!text.contains("<img"), "{text}");
    }

    #[test]
    fn placeholders_and_values_pair_up_in_order() {
        let mut out = Html::new();
        out.render("{}-{}-{}", &[&1u32, &"a"]);
        assert_eq!(out.as_str(), "1-a-");
        let mut none: Option<&str> = None;
        let mut out = Html::new();
        html!(out, "[{}]", none);
        none = Some("<");
        html!(out, "[{}]", none);
        assert_eq!(out.as_str(), "[][&lt;]");
    }

    #[test]
    fn url_parts_are_percent_encoded() {
        let mut out = Html::new();
        html!(out, "/runs/{}?q={}", Seg("../a b/\"<x>"), Query("a&b=c"));
        assert_eq!(out.as_str(), "/runs/..%2Fa%20b%2F%22%3Cx%3E?q=a%26b%3Dc");
    }

    #[test]
    fn fixed_numbers_round_and_non_finite_numbers_show_a_dash() {
        let mut out = Html::new();
        html!(
            out,
            "{} {} {}",
            Fixed(0.98712, 3),
            Fixed(f64::NAN, 2),
            Fixed(2.0, 0)
        );
        assert_eq!(out.as_str(), "0.987 – 2");
    }
}
