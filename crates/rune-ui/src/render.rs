//! The templates, compiled into the binary, and the filters they format numbers with.
//!
//! Autoescaping is on for every template (they all end in `.html`), so text from the API
//! (answers, job fields, error messages) is always rendered inert. Nothing in the
//! templates uses `|safe`; chart data goes through `|tojson`, which also escapes `<`,
//! `>`, `&` and `'`.

use minijinja::value::Value;
use minijinja::Environment;

/// Every template: name and source.
pub const TEMPLATES: &[(&str, &str)] = &[
    ("base.html", include_str!("../templates/base.html")),
    ("macros.html", include_str!("../templates/macros.html")),
    ("login.html", include_str!("../templates/login.html")),
    ("error.html", include_str!("../templates/error.html")),
    ("runs.html", include_str!("../templates/runs.html")),
    ("run.html", include_str!("../templates/run.html")),
    ("compare.html", include_str!("../templates/compare.html")),
    ("new.html", include_str!("../templates/new.html")),
    ("models.html", include_str!("../templates/models.html")),
    ("schedules.html", include_str!("../templates/schedules.html")),
    ("estop.html", include_str!("../templates/estop.html")),
    ("load.html", include_str!("../templates/load.html")),
    ("load_list.html", include_str!("../templates/load_list.html")),
    ("system.html", include_str!("../templates/system.html")),
];

const DASH: &str = "—";

fn number(v: &Value) -> Option<f64> {
    if v.is_none() || v.is_undefined() {
        return None;
    }
    f64::try_from(v.clone()).ok().filter(|x| x.is_finite())
}

/// `0.8|pct` → `80.0%`.
fn pct(v: Value) -> String {
    number(&v).map(|x| format!("{:.1}%", x * 100.0)).unwrap_or_else(|| DASH.into())
}

/// `0.8123|num(2)` → `0.81`.
fn num(v: Value, digits: Option<usize>) -> String {
    number(&v).map(|x| format!("{x:.*}", digits.unwrap_or(2))).unwrap_or_else(|| DASH.into())
}

/// Dollars: cents, or four decimals when cents would show $0.00.
fn usd(v: Value) -> String {
    match number(&v) {
        Some(x) if x != 0.0 && x.abs() < 0.01 => format!("${x:.4}"),
        Some(x) => format!("${x:.2}"),
        None => DASH.into(),
    }
}

/// Milliseconds, switching to seconds above 10 s.
fn ms(v: Value) -> String {
    match number(&v) {
        Some(x) if x >= 10_000.0 => format!("{:.1} s", x / 1000.0),
        Some(x) if x >= 100.0 => format!("{x:.0} ms"),
        Some(x) => format!("{x:.1} ms"),
        None => DASH.into(),
    }
}

/// Seconds as `1h 02m`, `3m 04s` or `5.2 s`.
fn dur(v: Value) -> String {
    match number(&v) {
        Some(x) if x >= 3600.0 => format!("{}h {:02}m", (x / 3600.0) as u64, ((x % 3600.0) / 60.0) as u64),
        Some(x) if x >= 60.0 => format!("{}m {:02}s", (x / 60.0) as u64, (x % 60.0) as u64),
        Some(x) => format!("{x:.1} s"),
        None => DASH.into(),
    }
}

/// An RFC 3339 time as `2026-11-27 13:40:02 UTC`.
fn when(v: Value) -> String {
    match v.as_str() {
        Some(s) => match chrono::DateTime::parse_from_rfc3339(s) {
            Ok(t) => t.with_timezone(&chrono::Utc).format("%Y-%m-%d %H:%M:%S UTC").to_string(),
            Err(_) => s.to_owned(),
        },
        None => DASH.into(),
    }
}

/// The first 8 characters of an id.
fn short(v: Value) -> String {
    v.as_str().map(|s| s.chars().take(8).collect()).unwrap_or_else(|| DASH.into())
}

/// A bar width (0–100) of `v` relative to `max`, for CSS bar charts.
fn bar(v: Value, max: Value) -> f64 {
    match (number(&v), number(&max)) {
        (Some(x), Some(m)) if m > 0.0 => (x / m * 100.0).clamp(0.0, 100.0),
        _ => 0.0,
    }
}

/// Signed number with a `+` for increases.
fn signed(v: Value, digits: Option<usize>) -> String {
    match number(&v) {
        Some(x) => format!("{x:+.*}", digits.unwrap_or(3)),
        None => DASH.into(),
    }
}

/// Builds the environment with every template and filter.
pub fn environment() -> Result<Environment<'static>, minijinja::Error> {
    let mut env = Environment::new();
    // `.html` templates are autoescaped by minijinja's default callback; make it explicit.
    env.set_auto_escape_callback(|_| minijinja::AutoEscape::Html);
    env.set_undefined_behavior(minijinja::UndefinedBehavior::Chainable);
    for (name, source) in TEMPLATES {
        env.add_template(name, source)?;
    }
    env.add_filter("pct", pct);
    env.add_filter("num", num);
    env.add_filter("usd", usd);
    env.add_filter("ms", ms);
    env.add_filter("dur", dur);
    env.add_filter("when", when);
    env.add_filter("short", short);
    env.add_filter("bar", bar);
    env.add_filter("signed", signed);
    Ok(env)
}

#[cfg(test)]
mod tests {
    use super::*;
    use minijinja::context;

    /// Every template compiles and the filters format as documented, with "—" for
    /// missing values.
    #[test]
    fn filters() {
        let env = environment().expect("templates compile");
        let r = |src: &str, ctx: minijinja::Value| env.render_str(src, ctx).expect("render");
        assert_eq!(r("{{ x|pct }}", context!(x => 0.8)), "80.0%");
        assert_eq!(r("{{ x|pct }}", context!(x => ())), DASH);
        assert_eq!(r("{{ x|num(1) }}", context!(x => 2.25)), "2.2");
        assert_eq!(r("{{ x|usd }}", context!(x => 0.0012)), "$0.0012");
        assert_eq!(r("{{ x|usd }}", context!(x => 3)), "$3.00");
        assert_eq!(r("{{ x|ms }}", context!(x => 12345)), "12.3 s");
        assert_eq!(r("{{ x|dur }}", context!(x => 125)), "2m 05s");
        assert_eq!(r("{{ x|when }}", context!(x => "2026-11-27T13:40:02+00:00")), "2026-11-27 13:40:02 UTC");
        assert_eq!(r("{{ x|short }}", context!(x => "0123456789")), "01234567");
        assert_eq!(r("{{ x|bar(4) }}", context!(x => 1)), "25.0");
        assert_eq!(r("{{ x|signed(2) }}", context!(x => 0.5)), "+0.50");
        assert_eq!(r("{{ x|num }}", context!(y => 1)), DASH);
    }

    /// Autoescaping: markup in values is shown as text; `tojson` cannot close a script.
    #[test]
    fn escaping() {
        let env = environment().expect("templates compile");
        let evil = "<script>alert(1)</script>\"'&";
        let out = env.render_str("<p title=\"{{ x }}\">{{ x }}</p>", context!(x => evil)).expect("render");
        assert!(!out.contains("<script>"), "{out}");
        assert!(out.contains("&lt;script&gt;"));
        let json = env.render_str("{{ x|tojson }}", context!(x => evil)).expect("render");
        assert!(!json.contains("</script>") && !json.contains('<'), "{json}");
    }
}
