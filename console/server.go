package console

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
)

// Options configure a console.
type Options struct {
	// Kube is the operator's own client configuration; every API request
	// of the console is made with it.
	Kube *rest.Config
	// GC serves the garbage collection panel; nil shows the panel as
	// unavailable with the reason.
	GC Collector
	// DVCRNamespace is where DVCR runs: "Run now" is offered to users who
	// may exec into its pods there (what `kubectl exec … dvcr-cleaner gc
	// run` needs), so the console grants nothing the user lacks.
	DVCRNamespace string
	// Registry is how "Download" reaches DVCR's registry.
	Registry Registry
	// DownloadDir holds the temporary sparse files of "Download raw"
	// conversions (default os.TempDir()): each takes the image's allocated
	// data, not its virtual size, until its download ends.
	DownloadDir string
	// RawConversions is how many "Download raw" conversions run at once
	// (default DefaultRawConversions); more wait for a free one.
	RawConversions int
}

// Server is the console's HTTP server.
type Server struct {
	opts     Options
	dynamic  dynamic.Interface
	core     kubernetes.Interface
	sessions *sessions
	uploads  *http.Client
	// proxy carries "Download" through the API server to DVCR's Service
	// when no registry address is given.
	proxy http.RoundTripper
	// conversions holds a token per "Download raw" conversion running.
	conversions chan struct{}
}

// New builds a console from the operator's client configuration.
func New(opts Options) (*Server, error) {
	if opts.Kube == nil {
		return nil, fmt.Errorf("%w: no Kubernetes client configuration", ErrBadRequest)
	}
	// Watches stay open for minutes: the request timeout of the CLI's
	// configuration (if any) would cut them, so the console's clients have
	// none and each call sets its own deadline.
	kube := rest.CopyConfig(opts.Kube)
	kube.Timeout = 0
	dyn, err := dynamic.NewForConfig(kube)
	if err != nil {
		return nil, fmt.Errorf("console: dynamic client: %w", err)
	}
	core, err := kubernetes.NewForConfig(kube)
	if err != nil {
		return nil, fmt.Errorf("console: client: %w", err)
	}
	proxy, err := newServiceProxy(kube)
	if err != nil {
		return nil, fmt.Errorf("console: %w", err)
	}
	if err := checkDownloadDir(opts.DownloadDir); err != nil {
		return nil, err
	}
	if opts.RawConversions <= 0 {
		opts.RawConversions = DefaultRawConversions
	}
	return &Server{
		opts: opts, dynamic: dyn, core: core, sessions: newSessions(),
		uploads: &http.Client{Transport: uploadTransport()}, proxy: proxy,
		conversions: make(chan struct{}, opts.RawConversions),
	}, nil
}

// checkDownloadDir refuses a download directory that is not one at start,
// rather than at the first "Download raw".
func checkDownloadDir(dir string) error {
	if dir == "" {
		return nil
	}
	st, err := os.Stat(dir)
	if err == nil && !st.IsDir() {
		err = fmt.Errorf("not a directory")
	}
	if err != nil {
		return fmt.Errorf("%w: download directory %s: %v", ErrBadRequest, dir, err)
	}
	return nil
}

// LoginURL is the URL to open: the listener's address with the one-time
// token.
func (s *Server) LoginURL(addr net.Addr) string {
	return fmt.Sprintf("http://%s/?%s=%s", addr, tokenParam, s.sessions.token)
}

// Serve answers on l until ctx ends.
func (s *Server) Serve(ctx context.Context, l net.Listener) error {
	srv := &http.Server{
		Handler:           s.Handler(l.Addr().String()),
		ReadHeaderTimeout: 10 * time.Second,
		BaseContext:       func(net.Listener) context.Context { return ctx },
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		<-ctx.Done()
		shutdown, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(shutdown)
	}()
	err := srv.Serve(l)
	<-done
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}

// Handler is the console behind its session guard; listen is the
// listener's host:port, the only Host the console answers to.
func (s *Server) Handler(listen string) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /", assetHandler())
	mux.HandleFunc("GET /api/session", s.session)
	mux.HandleFunc("GET /api/access", s.access)
	mux.HandleFunc("GET /api/namespaces", s.namespaces)
	mux.HandleFunc("GET /api/watch/{kind}", s.watch)
	mux.HandleFunc("GET /api/images/{kind}/{name}", s.details)
	mux.HandleFunc("POST /api/images/{kind}", s.create)
	mux.HandleFunc("DELETE /api/images/{kind}/{name}", s.remove)
	mux.HandleFunc("PUT /api/upload/{kind}/{name}", s.upload)
	mux.HandleFunc("GET /api/download/{kind}/{name}", s.download)
	mux.HandleFunc("GET /api/gc", s.gcStatus)
	mux.HandleFunc("GET /api/gc/check", s.gcCheck)
	mux.HandleFunc("POST /api/gc/run", s.gcRun)
	return s.sessions.guard(listen, mux)
}

// apiErrorBody is every error the console's API answers with.
type apiErrorBody struct {
	Error  string `json:"error"`
	Reason string `json:"reason,omitempty"`
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

func writeError(w http.ResponseWriter, code int, msg string) {
	writeJSON(w, code, apiErrorBody{Error: msg})
}

// writeAPIError answers with err: an API server's refusal keeps its code,
// reason and message word for word, so the page shows what the API server
// said.
func writeAPIError(w http.ResponseWriter, err error) {
	var status apierrors.APIStatus
	switch {
	case errors.As(err, &status):
		st := status.Status()
		code := int(st.Code)
		if code == 0 {
			code = http.StatusBadGateway
		}
		writeJSON(w, code, apiErrorBody{Error: st.Message, Reason: string(st.Reason)})
	case errors.Is(err, ErrBadRequest), errors.Is(err, ErrUnknownKind):
		writeError(w, http.StatusBadRequest, err.Error())
	case errors.Is(err, ErrNoUploadURL), errors.Is(err, ErrNotReady):
		writeError(w, http.StatusConflict, err.Error())
	case errors.Is(err, ErrGCUnavailable):
		writeError(w, http.StatusServiceUnavailable, err.Error())
	case errors.Is(err, ErrForbidden):
		writeError(w, http.StatusForbidden, err.Error())
	case errors.Is(err, context.DeadlineExceeded):
		writeError(w, http.StatusGatewayTimeout, "the API server did not answer in time: "+err.Error())
	default:
		writeError(w, http.StatusBadGateway, err.Error())
	}
}

// callTimeout bounds one API call made for a page request.
const callTimeout = 30 * time.Second

func callContext(r *http.Request) (context.Context, context.CancelFunc) {
	return context.WithTimeout(r.Context(), callTimeout)
}
