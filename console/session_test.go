package console

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// TestGuard: the session rules between the browser and the console.
func TestGuard(t *testing.T) {
	const listen = "127.0.0.1:8089"
	s := newSessions()
	token := s.token
	h := s.guard(listen, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusTeapot) }))
	serve := func(method, target, host string, cookie *http.Cookie, csrf string) *httptest.ResponseRecorder {
		r := httptest.NewRequest(method, target, nil)
		r.Host = host
		if cookie != nil {
			r.AddCookie(cookie)
		}
		if csrf != "" {
			r.Header.Set(csrfHeader, csrf)
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		return w
	}

	login := serve(http.MethodGet, "/?token="+token, listen, nil, "")
	if login.Code != http.StatusSeeOther || login.Header().Get("Location") != "/" {
		t.Fatalf("login: HTTP %d to %q, want 303 to /", login.Code, login.Header().Get("Location"))
	}
	cookies := login.Result().Cookies()
	if len(cookies) != 1 || !cookies[0].HttpOnly || cookies[0].SameSite != http.SameSiteStrictMode || cookies[0].Name != "dvcr_console_session_8089" {
		t.Fatalf("login cookie: %+v", cookies)
	}
	session := cookies[0]
	csrf := s.byID[session.Value]

	tests := []struct {
		name   string
		method string
		target string
		host   string
		cookie *http.Cookie
		csrf   string
		want   int
	}{
		{"no session", http.MethodGet, "/api/session", listen, nil, "", http.StatusUnauthorized},
		{"token spent", http.MethodGet, "/?token=" + token, listen, nil, "", http.StatusUnauthorized},
		{"wrong token", http.MethodGet, "/?token=" + strings.Repeat("0", len(token)), listen, nil, "", http.StatusUnauthorized},
		{"unknown session", http.MethodGet, "/", listen, &http.Cookie{Name: session.Name, Value: "forged"}, "", http.StatusUnauthorized},
		{"session", http.MethodGet, "/api/session", listen, session, "", http.StatusTeapot},
		{"localhost name", http.MethodGet, "/", "localhost:8089", session, "", http.StatusTeapot},
		{"rebound name", http.MethodGet, "/", "attacker.example:8089", session, "", http.StatusMisdirectedRequest},
		{"other port", http.MethodGet, "/", "127.0.0.1:9999", session, "", http.StatusMisdirectedRequest},
		{"change without CSRF", http.MethodPost, "/api/images/cvi", listen, session, "", http.StatusForbidden},
		{"change with a wrong CSRF", http.MethodDelete, "/api/images/cvi/x", listen, session, "nope", http.StatusForbidden},
		{"change with CSRF", http.MethodPost, "/api/images/cvi", listen, session, csrf, http.StatusTeapot},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := serve(tt.method, tt.target, tt.host, tt.cookie, tt.csrf)
			if w.Code != tt.want {
				t.Errorf("HTTP %d, want %d: %s", w.Code, tt.want, w.Body)
			}
			if csp := w.Header().Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'self'") {
				t.Errorf("Content-Security-Policy %q", csp)
			}
		})
	}
}
