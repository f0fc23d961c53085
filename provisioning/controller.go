// Package provisioning is DVCR's controller for ClusterVirtualImage and
// VirtualImage resources with storage ContainerRegistry: it fills each image
// from its spec.dataSource (HTTP, ContainerImage, Upload, ObjectRef) through
// the import engine, in this process, and reports phase, progress, sizes and
// conditions in the resource's status, as the platform's API has them.
//
// One reconciler per kind (controller-runtime) decides; the imports run in
// goroutines of their own, at most Options.Concurrency at once (uploads are
// driven by the user and not counted). A running import owns the status of
// its resource: the reconciler writes status only when no import runs for
// it, so the two never race. The spec may change until Ready (the running
// import is cancelled and a new one starts for the new generation); after
// Ready the spec is left alone and a condition says so. Deleting a resource
// cancels its import and leaves the repository to the garbage collector.
package provisioning

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/record"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"
	"sigs.k8s.io/controller-runtime/pkg/source"

	"github.com/dvcr/dvcr/api/v1alpha2"
	"github.com/dvcr/dvcr/importer/registryclient"
	"github.com/dvcr/dvcr/kube"
	"github.com/dvcr/dvcr/naming"
	"github.com/dvcr/dvcr/provisioning/upload"
)

// Options configure the controller.
type Options struct {
	RESTConfig    *rest.Config
	Concurrency   int               // imports at once
	RegistryHost  string            // shortens long repository names, as the platform does
	RegistryURL   string            // host[:port] of status.target.registryURL
	Registry      http.RoundTripper // the registry, in process
	Uploads       *upload.Handler
	InClusterURL  string // base URL of /upload inside the cluster
	ExternalURL   string // base URL of /upload through the Ingress; may be empty
	UploadTimeout time.Duration
	TempDir       string       // spool of sources of unknown length
	Logger        *slog.Logger // controller-runtime's errors; nil: none
	// StatusInterval spaces progress writes of a running import (default 2s).
	StatusInterval time.Duration
}

// Controller runs the reconcilers and the imports.
type Controller struct {
	opts     Options
	mgr      ctrl.Manager
	client   client.Client
	reader   client.Reader // uncached, for secrets
	recorder record.EventRecorder
	jobs     *jobs
	retries  *retries
	tokens   tokens
	waiting  *waitList
	log      logr.Logger
	ctx      context.Context // the manager's, for imports outliving a reconcile
}

// New builds the controller; Start runs it.
func New(opts Options) (*Controller, error) {
	if opts.Concurrency < 1 {
		opts.Concurrency = 1
	}
	if opts.StatusInterval <= 0 {
		opts.StatusInterval = 2 * time.Second
	}
	log := newLogger(opts.Logger)
	mgr, err := newManager(opts.RESTConfig, log)
	if err != nil {
		return nil, err
	}
	c := &Controller{
		opts:     opts,
		mgr:      mgr,
		client:   mgr.GetClient(),
		reader:   mgr.GetAPIReader(),
		recorder: mgr.GetEventRecorderFor("dvcr-provisioning"),
		jobs:     newJobs(opts.Concurrency),
		retries:  newRetries(),
		tokens:   tokens{byKey: map[objectKey]string{}},
		waiting:  newWaitList(),
		log:      log,
		ctx:      context.Background(),
	}
	c.jobs.onFree = c.waiting.wake
	for _, k := range []kindInfo{cviKind, viKind} {
		if err := c.watch(k); err != nil {
			return nil, err
		}
	}
	return c, nil
}

// newManager is the controller-runtime manager of the two kinds, with no
// leader election of its own: the process that runs Start was elected for
// all the leader does.
func newManager(cfg *rest.Config, log logr.Logger) (ctrl.Manager, error) {
	scheme := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(scheme); err != nil {
		return nil, err
	}
	if err := v1alpha2.AddToScheme(scheme); err != nil {
		return nil, err
	}
	rc := rest.CopyConfig(cfg)
	kube.RaiseRateLimit(rc)
	mgr, err := ctrl.NewManager(rc, ctrl.Options{
		Scheme:                 scheme,
		Logger:                 log,
		Metrics:                metricsserver.Options{BindAddress: "0"},
		HealthProbeBindAddress: "0",
		Client:                 client.Options{Cache: &client.CacheOptions{DisableFor: []client.Object{&corev1.Secret{}}}},
	})
	if err != nil {
		return nil, fmt.Errorf("provisioning: %w", err)
	}
	return mgr, nil
}

// watch reconciles kind k: its objects, and the ones waiting for a free
// import slot when one frees.
func (c *Controller) watch(k kindInfo) error {
	r := &reconciler{c: c, kind: k}
	err := ctrl.NewControllerManagedBy(c.mgr).
		Named(string(k.kind)).
		For(k.newObject()).
		WatchesRawSource(source.Channel(c.waiting.channel(k), &handler.EnqueueRequestForObject{})).
		WithOptions(controller.Options{MaxConcurrentReconciles: 2}).
		Complete(r)
	if err != nil {
		return fmt.Errorf("provisioning: %s controller: %w", k.kind, err)
	}
	return nil
}

// Start runs until ctx ends; the imports running then are cancelled. It
// runs at once: where several processes could run it, dvcr serve calls
// Start only on the one that leads (cli/serve/leader.go). A Controller
// starts once.
func (c *Controller) Start(ctx context.Context) error {
	c.ctx = ctx
	defer c.jobs.cancelAll()
	return c.mgr.Start(ctx)
}

// mgrContext is the context imports run under: they end with the process.
func (c *Controller) mgrContext() context.Context { return c.ctx }

// forget stops what runs for a resource that is gone or going.
func (c *Controller) forget(key objectKey, uid types.UID) {
	c.jobs.stop(key)
	c.retireToken(key)
	if uid != "" {
		c.retries.forget(uid)
		c.jobs.seenReady(uid)
	}
}

// imageLost tells whether a Ready image's tag is gone from the registry.
func (c *Controller) imageLost(ctx context.Context, repo naming.Repository) (bool, error) {
	client, err := registryclient.New(ctx, "dvcr.local", []string{repo.Path()}, registryclient.Options{Transport: c.opts.Registry})
	if err != nil {
		return false, err
	}
	_, err = client.GetManifest(ctx, repo.Path(), "latest")
	if errors.Is(err, registryclient.ErrNotFound) {
		return true, nil
	}
	return false, err
}

// repository is where an image's data goes in DVCR.
func (c *Controller) repository(k kindInfo, obj v1alpha2.Image) naming.Repository {
	return naming.RepositoryFor(c.opts.RegistryHost, k.kind, obj.GetNamespace(), obj.GetName())
}

// targetURL is status.target.registryURL of an image.
func (c *Controller) targetURL(repo naming.Repository) string {
	return c.opts.RegistryURL + "/" + repo.Path() + ":latest"
}
