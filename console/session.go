package console

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/hex"
	"net"
	"net/http"
	"sync"
)

const (
	csrfHeader = "X-DVCR-CSRF"
	tokenParam = "token"
)

// sessions holds the login token printed at start and the browser sessions
// it opened. The token is spent by its first use: a link copied from a
// terminal's scrollback or a browser's history opens nothing afterwards.
type sessions struct {
	// cookie is the session cookie's name. Browsers send a host's cookies
	// to every port of it, so the name carries the port: two consoles on
	// one machine (say, two clusters) keep their sessions apart.
	cookie string
	mu     sync.Mutex
	token  string            // "" once spent
	byID   map[string]string // session id -> CSRF token
}

func newSessions() *sessions {
	return &sessions{token: randomHex(32), byID: map[string]string{}, cookie: "dvcr_console_session"}
}

// listenOn names the session cookie after the listener's port.
func (s *sessions) listenOn(listen string) {
	if _, port, err := net.SplitHostPort(listen); err == nil {
		s.cookie = "dvcr_console_session_" + port
	}
}

// randomHex is n random bytes, hex-encoded. crypto/rand does not fail on
// the platforms Go supports (it panics inside the runtime if it ever did).
func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// redeem spends the login token and returns a new session's id, or "" when
// the token is wrong or already spent.
func (s *sessions) redeem(token string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.token == "" || subtle.ConstantTimeCompare([]byte(token), []byte(s.token)) != 1 {
		return ""
	}
	s.token = ""
	id := randomHex(32)
	s.byID[id] = randomHex(32)
	return id
}

// csrf is the CSRF token of the request's session, "" when it has none.
func (s *sessions) csrf(r *http.Request) string {
	c, err := r.Cookie(s.cookie)
	if err != nil {
		return ""
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.byID[c.Value]
}

// guard wraps the console's handler: it checks the Host header, opens a
// session from the login link, refuses requests without a session (401)
// and state-changing requests without the session's CSRF token (403).
func (s *sessions) guard(listen string, next http.Handler) http.Handler {
	s.listenOn(listen)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		securityHeaders(w.Header())
		if !loopbackHost(r.Host, listen) {
			http.Error(w, "dvcr console: unexpected Host header "+r.Host+" (open the URL the console printed)", http.StatusMisdirectedRequest)
			return
		}
		if token := r.URL.Query().Get(tokenParam); token != "" {
			s.login(w, r, token)
			return
		}
		csrf := s.csrf(r)
		if csrf == "" {
			http.Error(w, "dvcr console: no session; open the URL that `dvcr console` printed (its token works once)", http.StatusUnauthorized)
			return
		}
		if !safeMethod(r.Method) && subtle.ConstantTimeCompare([]byte(r.Header.Get(csrfHeader)), []byte(csrf)) != 1 {
			writeError(w, http.StatusForbidden, "the request carries no valid CSRF token (reload the page)")
			return
		}
		next.ServeHTTP(w, r)
	})
}

// login exchanges the link's token for a session cookie and redirects to
// the same page without the token, so it stays out of the address bar.
func (s *sessions) login(w http.ResponseWriter, r *http.Request, token string) {
	id := s.redeem(token)
	if id == "" {
		http.Error(w, "dvcr console: this login link is wrong or was already used; restart `dvcr console` for a new one", http.StatusUnauthorized)
		return
	}
	http.SetCookie(w, &http.Cookie{
		Name: s.cookie, Value: id, Path: "/",
		HttpOnly: true, SameSite: http.SameSiteStrictMode,
	})
	u := *r.URL
	q := u.Query()
	q.Del(tokenParam)
	u.RawQuery = q.Encode()
	http.Redirect(w, r, u.RequestURI(), http.StatusSeeOther)
}

func safeMethod(m string) bool { return m == http.MethodGet || m == http.MethodHead }

// loopbackHost accepts the listener's own host:port and the loopback names
// for its port: a DNS-rebound name pointing at 127.0.0.1 is refused.
func loopbackHost(host, listen string) bool {
	if host == listen {
		return true
	}
	h, port, err := net.SplitHostPort(host)
	if err != nil {
		return false
	}
	_, listenPort, err := net.SplitHostPort(listen)
	if err != nil || port != listenPort {
		return false
	}
	return h == "localhost" || h == "127.0.0.1" || h == "::1"
}

// securityHeaders keep the page to its own origin: no external scripts,
// styles, fonts or connections, no framing, no referrer.
func securityHeaders(h http.Header) {
	h.Set("Content-Security-Policy", "default-src 'self'; img-src 'self' data:; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'")
	h.Set("X-Frame-Options", "DENY")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Cache-Control", "no-store")
}
