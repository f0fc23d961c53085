package console

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/dynamic"

	"github.com/dvcr/dvcr/api/v1alpha2"
	"github.com/dvcr/dvcr/naming"
)

const (
	// keepAlive is how often an idle event stream gets a comment line, so
	// proxies and the browser keep it open.
	keepAlive = 15 * time.Second
	// relistBackoff is the pause before listing again after the API server
	// refused or dropped a list or watch.
	relistBackoff = 3 * time.Second
)

// watch streams a kind's images as server-sent events: "list" with every
// row, then "upsert" and "delete" as the API server reports changes, and
// "problem" when it cannot be reached or refuses (the stream lists again
// afterwards). Project images without ?namespace= are those of every
// namespace the user may list.
func (s *Server) watch(w http.ResponseWriter, r *http.Request) {
	kind, err := imageKind(r)
	if err != nil {
		writeAPIError(w, err)
		return
	}
	flusher, ok := w.(http.Flusher)
	if !ok {
		writeError(w, http.StatusInternalServerError, "streaming is not supported by this connection")
		return
	}
	res := s.listResource(kind, r.URL.Query().Get("namespace"))
	w.Header().Set("Content-Type", "text/event-stream")
	w.WriteHeader(http.StatusOK)
	stream := &eventStream{w: w, flush: flusher.Flush}
	for r.Context().Err() == nil {
		if err := streamOnce(r.Context(), res, stream); err != nil && r.Context().Err() == nil {
			stream.send("problem", apiErrorBody{Error: err.Error()})
			select {
			case <-r.Context().Done():
			case <-time.After(relistBackoff):
			}
		}
	}
}

func (s *Server) listResource(kind naming.Kind, namespace string) dynamic.ResourceInterface {
	if kind.Namespaced() && namespace != "" {
		return s.dynamic.Resource(v1alpha2.Resources[kind]).Namespace(namespace)
	}
	return s.dynamic.Resource(v1alpha2.Resources[kind])
}

// streamOnce lists and then watches from the list's resource version until
// the watch ends (the API server closes watches after a while, and a 410
// Gone means the version is too old): the caller lists again.
func streamOnce(ctx context.Context, res dynamic.ResourceInterface, stream *eventStream) error {
	listCtx, cancel := context.WithTimeout(ctx, callTimeout)
	list, err := res.List(listCtx, metav1.ListOptions{})
	cancel()
	if err != nil {
		return err
	}
	rows := make([]Row, 0, len(list.Items))
	for i := range list.Items {
		rows = append(rows, rowOf(&list.Items[i]))
	}
	stream.send("list", rows)
	watcher, err := res.Watch(ctx, metav1.ListOptions{ResourceVersion: list.GetResourceVersion(), AllowWatchBookmarks: true})
	if err != nil {
		return err
	}
	defer watcher.Stop()
	tick := time.NewTicker(keepAlive)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
			stream.comment()
		case ev, ok := <-watcher.ResultChan():
			if !ok {
				return nil
			}
			if err := forward(ev, stream); err != nil {
				return err
			}
		}
	}
}

// forward sends one watch event; an error event ends the watch.
func forward(ev watch.Event, stream *eventStream) error {
	switch ev.Type {
	case watch.Added, watch.Modified, watch.Deleted:
		obj, ok := ev.Object.(*unstructured.Unstructured)
		if !ok {
			return nil
		}
		name := "upsert"
		if ev.Type == watch.Deleted {
			name = "delete"
		}
		stream.send(name, rowOf(obj))
	case watch.Error:
		if st, ok := ev.Object.(*metav1.Status); ok && st.Reason == metav1.StatusReasonExpired {
			return nil // resource version too old: list again, no problem to show
		}
		return fmt.Errorf("watch ended by the API server: %v", ev.Object)
	}
	return nil
}

// eventStream writes server-sent events.
type eventStream struct {
	w     http.ResponseWriter
	flush func()
}

func (e *eventStream) send(event string, v any) {
	data, err := json.Marshal(v)
	if err != nil {
		return
	}
	fmt.Fprintf(e.w, "event: %s\ndata: %s\n\n", event, data)
	e.flush()
}

func (e *eventStream) comment() {
	fmt.Fprint(e.w, ": keep-alive\n\n")
	e.flush()
}
