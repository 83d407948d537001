//! `/dags/{name}/run`: the run form, one field per param of the DAG, typed
//! by its default (numbers, `true`/`false`, text), prefilled with the
//! default. What the form sends goes through the same typing and checks as
//! `dag run --param`, so it fails with the same messages.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde_json::Value;

use super::find_dag;
use crate::model::Dag;
use crate::ui::UiState;
use crate::ui::error::PageError;
use crate::ui::form::Form;
use crate::ui::html::{Html, Seg, html};
use crate::ui::layout::{Section, Viewer, page_with_status};
use crate::workspace::{ParamKind, check_param_types, parse_param_overrides};

/// Form fields for params are named `param.<name>`.
pub const PARAM_PREFIX: &str = "param.";

/// A default as the form shows it: text as it is, other values as JSON
/// (which YAML, and so `--param`, reads back as the same value).
pub fn field_text(default: &Value) -> String {
    match default {
        Value::String(text) => text.clone(),
        other => other.to_string(),
    }
}

/// The overrides a submitted form asks for: the fields whose text differs
/// from their default's, typed as `--param key=value` types them, and
/// checked against the defaults' types. Fields for undeclared params are
/// kept, for the run's own check to refuse by name.
pub fn overrides_from_form(dag: &Dag, form: &Form) -> Result<BTreeMap<String, Value>, String> {
    let mut pairs = Vec::new();
    for (field, text) in &form.fields {
        let Some(name) = field.strip_prefix(PARAM_PREFIX) else {
            continue;
        };
        let unchanged = dag
            .params
            .get(name)
            .is_some_and(|default| field_text(default) == *text);
        if !unchanged {
            pairs.push(format!("{name}={text}"));
        }
    }
    let overrides = parse_param_overrides(&pairs).map_err(|e| e.to_string())?;
    check_param_types(&dag.params, &overrides).map_err(|e| e.to_string())?;
    Ok(overrides)
}

pub async fn show(
    State(ui): State<Arc<UiState>>,
    viewer: Viewer,
    Path(name): Path<String>,
) -> Result<Response, PageError> {
    let loaded = find_dag(&ui, &name)?;
    let body = render(&loaded.dag, &viewer, &Form::default(), None);
    Ok(page_with_status(
        StatusCode::OK,
        &viewer,
        Section::Dags,
        &format!("Run {name}"),
        &body,
    ))
}

/// The form, with `submitted` values in place of defaults and `problem`
/// (the reason a submission was refused) above it.
pub fn render(dag: &Dag, viewer: &Viewer, submitted: &Form, problem: Option<&str>) -> Html {
    let mut out = Html::new();
    html!(
        out,
        "<h1>Run {}</h1><p class=\"lead description\">{}</p>",
        dag.name,
        dag.description
    );
    if let Some(problem) = problem {
        html!(
            out,
            "<div class=\"error-box\" role=\"alert\" id=\"run-error\">{}</div>",
            problem
        );
    }
    html!(
        out,
        "<form method=\"post\" action=\"/dags/{}/run\" id=\"run-form\">{}",
        Seg(&dag.name),
        viewer.csrf_field()
    );
    if dag.params.is_empty() {
        html!(out, "<p class=\"muted\">This DAG has no params.</p>");
    }
    for (name, default) in &dag.params {
        let field = format!("{PARAM_PREFIX}{name}");
        let id = format!("param-{name}");
        let value = submitted
            .get(&field)
            .map_or_else(|| field_text(default), String::from);
        let kind = ParamKind::of(default);
        html!(
            out,
            "<label for=\"{}\">{} <span class=\"hint\">{} · default <code>{}</code></span></label>",
            id,
            name,
            crate::ui::layout::status_word(&kind),
            field_text(default)
        );
        match kind {
            ParamKind::Boolean => {
                html!(out, "<select id=\"{}\" name=\"{}\">", id, field);
                for option in ["true", "false"] {
                    let selected = (value == option).then(|| Html::from_static(" selected"));
                    html!(out, "<option{}>{}</option>", selected, option);
                }
                html!(out, "</select>");
            }
            ParamKind::Integer | ParamKind::Number => html!(
                out,
                "<input id=\"{}\" name=\"{}\" type=\"number\" step=\"{}\" value=\"{}\" required>",
                id,
                field,
                if kind == ParamKind::Integer {
                    "1"
                } else {
                    "any"
                },
                value
            ),
            ParamKind::Text | ParamKind::Any => html!(
                out,
                "<input id=\"{}\" name=\"{}\" type=\"text\" value=\"{}\">",
                id,
                field,
                value
            ),
        }
    }
    let force = submitted
        .get("force")
        .is_some()
        .then(|| Html::from_static(" checked"));
    html!(
        out,
        "<label><input type=\"checkbox\" name=\"force\" value=\"1\"{}> run every task, even those up to date</label>\
         <p><button class=\"primary\" type=\"submit\">Start run</button> <a href=\"/dags/{}\">Cancel</a></p></form>",
        force,
        Seg(&dag.name)
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::views::test_support::dag;

    const DAG: &str = "name: p\nparams:\n  n: 300\n  ratio: 0.3\n  flag: false\n  path: data/x.csv\n  code: '007'\ntasks:\n  t:\n    operator: noop\n";

    #[test]
    fn unchanged_fields_are_not_overrides_and_changed_ones_are_typed() -> Result<(), String> {
        let dag = dag(DAG)?;
        let form = Form::parse(
            "csrf=x&param.n=300&param.ratio=0.5&param.flag=true&param.path=data%2Fx.csv&param.code=007",
        );
        let overrides = overrides_from_form(&dag, &form)?;
        assert_eq!(
            overrides,
            BTreeMap::from([
                ("flag".to_string(), serde_json::json!(true)),
                ("ratio".to_string(), serde_json::json!(0.5)),
            ])
        );
        Ok(())
    }

    #[test]
    fn a_wrong_type_fails_as_the_command_line_does() -> Result<(), String> {
        let dag = dag(DAG)?;
        let error = overrides_from_form(&dag, &Form::parse("param.n=abc"))
            .err()
            .unwrap_or_default();
        let pairs = parse_param_overrides(&["n=abc".to_string()]).map_err(|e| e.to_string())?;
        let cli = check_param_types(&dag.params, &pairs)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert_eq!(error, cli);
        assert!(error.contains("takes an integer"), "{error}");
        // An undeclared param is passed on for the run's check to name.
        let unknown = overrides_from_form(&dag, &Form::parse("param.nn=1"))?;
        assert!(unknown.contains_key("nn"));
        Ok(())
    }

    #[test]
    fn fields_are_typed_by_their_defaults_and_escaped() -> Result<(), String> {
        let dag = dag(&DAG.replace("data/x.csv", "'\"><script>x</script>'"))?;
        let viewer = Viewer {
            csrf: "tok".into(),
            signed_in: false,
        };
        let html = render(&dag, &viewer, &Form::default(), Some("<bad>")).into_string();
        assert!(
            html.contains("name=\"param.n\" type=\"number\" step=\"1\" value=\"300\""),
            "{html}"
        );
        assert!(html.contains("step=\"any\" value=\"0.3\""), "{html}");
        assert!(html.contains("<select id=\"param-flag\""), "{html}");
        assert!(
            html.contains("value=\"&quot;&gt;&lt;script&gt;x&lt;/script&gt;\""),
            "{html}"
        );
        assert!(html.contains("name=\"csrf\" value=\"tok\""), "{html}");
        assert!(html.contains("&lt;bad&gt;"), "{html}");
        assert!(!html.contains("<script>"), "{html}");
        Ok(())
    }
}
