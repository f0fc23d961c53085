package envtest

import (
	"context"
	"testing"
	"time"

	apiextensionsclient "k8s.io/apiextensions-apiserver/pkg/client/clientset/clientset"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// DeleteCRD removes a CustomResourceDefinition (e.g.
// "virtualdisks.virtualization.deckhouse.io") and waits until the API server
// no longer serves its resource, to simulate a kind that is not installed.
func (c *Cluster) DeleteCRD(t testing.TB, name string) {
	t.Helper()
	client, err := apiextensionsclient.NewForConfig(c.Config)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), callTimeout)
	defer cancel()
	crds := client.ApiextensionsV1().CustomResourceDefinitions()
	if err := crds.Delete(ctx, name, metav1.DeleteOptions{}); err != nil {
		t.Fatalf("deleting CRD %s: %v", name, err)
	}
	for {
		_, err := crds.Get(ctx, name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("CRD %s still present after %s", name, callTimeout)
		case <-time.After(100 * time.Millisecond):
		}
	}
}
