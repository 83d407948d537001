//! The checks in front of every UI route (see [`super::security`]), the
//! response headers every page gets, and the sign-in and sign-out pages.

use std::sync::Arc;

use axum::body::{Body, to_bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::UiState;
use super::form::Form;
use super::html::{Html, Query, html};
use super::layout::{Section, Viewer, bare_page, page_with_status};
use super::security::{Access, CSRF_FIELD, Guard, MIN_TOKEN_CHARS, local_path};

/// Largest form body accepted.
pub const MAX_FORM_BYTES: usize = 64 * 1024;

/// Content Security Policy: scripts and styles only from this server, no
/// inline script or style, no framing, forms post only here.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
                   connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'";

pub async fn protect(State(ui): State<Arc<UiState>>, request: Request, next: Next) -> Response {
    let mut response = match check(&ui.guard, request).await {
        Ok(request) => next.run(request).await,
        Err(refusal) => refusal,
    };
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    response
}

fn refuse(status: StatusCode, title: &str, message: &str) -> Response {
    let mut body = Html::new();
    html!(
        body,
        "<h1>{}</h1><div class=\"error-box\" role=\"alert\">{}</div>",
        title,
        message
    );
    (status, bare_page(Section::None, title, &body)).into_response()
}

/// The request, let through (with its body read back in for a POST), or
/// the answer refusing it.
async fn check(guard: &Guard, request: Request) -> Result<Request, Response> {
    if !guard.host_allowed(request.headers()) {
        return Err(refuse(
            StatusCode::FORBIDDEN,
            "Unexpected host",
            "Without DAG_API_TOKEN this UI answers only requests addressed to 127.0.0.1, localhost or [::1].",
        ));
    }
    let path = request.uri().path();
    let public = path.starts_with("/assets/") || path == "/login";
    match guard.access(request.headers()) {
        Access::Open | Access::SignedIn => {}
        Access::TokenTooShort if path.starts_with("/assets/") => {}
        Access::TokenTooShort => {
            return Err(refuse(
                StatusCode::FORBIDDEN,
                "Sign-in disabled",
                &format!(
                    "DAG_API_TOKEN is shorter than {MIN_TOKEN_CHARS} characters, so the web UI signs nobody in. Restart the daemon with a longer token."
                ),
            ));
        }
        Access::SignInNeeded if public => {}
        Access::SignInNeeded if matches!(*request.method(), Method::GET | Method::HEAD) => {
            let wanted = request
                .uri()
                .path_and_query()
                .map_or("/", |p| p.as_str())
                .to_string();
            let mut location = Html::new();
            html!(location, "/login?next={}", Query(&wanted));
            return Err(redirect(location.as_str()));
        }
        Access::SignInNeeded => {
            return Err(refuse(
                StatusCode::UNAUTHORIZED,
                "Sign in first",
                "This action needs a signed-in session.",
            ));
        }
    }
    if request.method() != Method::POST {
        return Ok(request);
    }
    let (parts, body) = request.into_parts();
    let Ok(bytes) = to_bytes(body, MAX_FORM_BYTES).await else {
        return Err(refuse(
            StatusCode::PAYLOAD_TOO_LARGE,
            "Form too large",
            &format!("Forms are limited to {MAX_FORM_BYTES} bytes."),
        ));
    };
    let form = Form::parse_bytes(&bytes);
    if !guard.post_allowed(&parts.headers, form.get(CSRF_FIELD)) {
        return Err(refuse(
            StatusCode::FORBIDDEN,
            "Form refused",
            "This form is out of date or was sent from another site. Reload the page and try again.",
        ));
    }
    Ok(Request::from_parts(parts, Body::from(bytes)))
}

/// `303 See Other` to a path on this site.
pub fn redirect(location: &str) -> Response {
    let location = HeaderValue::from_str(location).unwrap_or(HeaderValue::from_static("/"));
    (StatusCode::SEE_OTHER, [(header::LOCATION, location)]).into_response()
}

fn login_form(viewer: &Viewer, next: &str, problem: Option<&str>) -> Html {
    let mut body = Html::new();
    html!(body, "<h1>Sign in</h1>");
    if let Some(problem) = problem {
        html!(
            body,
            "<div class=\"error-box\" role=\"alert\">{}</div>",
            problem
        );
    }
    html!(
        body,
        "<p class=\"lead\">This daemon requires its token (DAG_API_TOKEN). It is exchanged for a session cookie and not stored in the browser.</p>\
         <form method=\"post\" action=\"/login\">{}<input type=\"hidden\" name=\"next\" value=\"{}\">\
         <label for=\"token\">Token</label><input id=\"token\" type=\"password\" name=\"token\" autocomplete=\"current-password\" required autofocus>\
         <p><button class=\"primary\" type=\"submit\">Sign in</button></p></form>",
        viewer.csrf_field(),
        next
    );
    body
}

pub async fn login_page(
    State(ui): State<Arc<UiState>>,
    viewer: Viewer,
    headers: HeaderMap,
    axum::extract::RawQuery(query): axum::extract::RawQuery,
) -> Response {
    if !ui.guard.token_required() || ui.guard.access(&headers) == Access::SignedIn {
        return redirect("/");
    }
    let form = Form::parse(query.as_deref().unwrap_or(""));
    let next = local_path(form.get("next")).to_string();
    page_with_status(
        StatusCode::OK,
        &viewer,
        Section::None,
        "Sign in",
        &login_form(&viewer, &next, None),
    )
}

pub async fn login(
    State(ui): State<Arc<UiState>>,
    viewer: Viewer,
    body: axum::body::Bytes,
) -> Response {
    let form = Form::parse_bytes(&body);
    let next = local_path(form.get("next")).to_string();
    let presented = form.get("token").unwrap_or("");
    match ui.guard.session_cookie() {
        Some(cookie) if ui.guard.token_matches(presented) => {
            let mut response = redirect(&next);
            response.headers_mut().insert(header::SET_COOKIE, cookie);
            response
        }
        _ => page_with_status(
            StatusCode::UNAUTHORIZED,
            &viewer,
            Section::None,
            "Sign in",
            &login_form(&viewer, &next, Some("That is not the daemon's token.")),
        ),
    }
}

pub async fn logout() -> Response {
    let mut response = redirect("/login");
    response
        .headers_mut()
        .insert(header::SET_COOKIE, Guard::expired_cookie());
    response
}
