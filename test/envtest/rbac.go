package envtest

import (
	"context"
	"testing"
	"time"

	authzv1 "k8s.io/api/authorization/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
)

// grantTimeout bounds the wait for a new binding to reach the RBAC
// authorizer, which learns about roles and bindings through informers.
const grantTimeout = 15 * time.Second

// Grant gives user exactly rules, cluster-wide: a new ClusterRole with these
// rules and a ClusterRoleBinding of it to the user. It returns once the
// authorizer allows the first rule, so the test's next request sees the
// rights. Users made by KubeconfigFor or ConfigFor have no other rights.
func (c *Cluster) Grant(t testing.TB, user string, rules []rbacv1.PolicyRule) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), callTimeout)
	defer cancel()
	rbac := c.Clientset.RbacV1()
	role, err := rbac.ClusterRoles().Create(ctx, &rbacv1.ClusterRole{
		ObjectMeta: metav1.ObjectMeta{GenerateName: "dvcr-test-"},
		Rules:      rules,
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("envtest: creating ClusterRole for %q: %v", user, err)
	}
	_, err = rbac.ClusterRoleBindings().Create(ctx, &rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: role.Name},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: role.Name},
		Subjects:   []rbacv1.Subject{{APIGroup: rbacv1.GroupName, Kind: rbacv1.UserKind, Name: user}},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("envtest: binding ClusterRole %s to %q: %v", role.Name, user, err)
	}
	if len(rules) > 0 {
		c.waitAllowed(t, user, rules[0])
	}
}

// waitAllowed polls a SubjectAccessReview for the first verb, group and
// resource (or URL) of rule until the authorizer allows it for user.
func (c *Cluster) waitAllowed(t testing.TB, user string, rule rbacv1.PolicyRule) {
	t.Helper()
	review := &authzv1.SubjectAccessReview{Spec: authzv1.SubjectAccessReviewSpec{
		User:                  user,
		ResourceAttributes:    resourceAttributes(rule),
		NonResourceAttributes: nonResourceAttributes(rule),
	}}
	if review.Spec.ResourceAttributes == nil && review.Spec.NonResourceAttributes == nil {
		return // an empty rule allows nothing, so there is nothing to wait for
	}
	ctx, cancel := context.WithTimeout(context.Background(), grantTimeout)
	defer cancel()
	reviews := c.Clientset.AuthorizationV1().SubjectAccessReviews()
	err := wait.PollUntilContextCancel(ctx, 50*time.Millisecond, true, func(ctx context.Context) (bool, error) {
		got, err := reviews.Create(ctx, review, metav1.CreateOptions{})
		if err != nil {
			return false, err
		}
		return got.Status.Allowed, nil
	})
	if err != nil {
		t.Fatalf("envtest: rights granted to %q did not take effect within %s: %v", user, grantTimeout, err)
	}
}

// resourceAttributes picks the first verb, group, resource and resource name
// of rule. A "*" in the rule is passed as is, which RBAC matches. The name
// matters: a rule limited to resourceNames allows no request without a name.
func resourceAttributes(rule rbacv1.PolicyRule) *authzv1.ResourceAttributes {
	if len(rule.Verbs) == 0 || len(rule.Resources) == 0 || len(rule.APIGroups) == 0 {
		return nil
	}
	attrs := &authzv1.ResourceAttributes{Verb: rule.Verbs[0], Group: rule.APIGroups[0], Resource: rule.Resources[0]}
	if len(rule.ResourceNames) > 0 {
		attrs.Name = rule.ResourceNames[0]
	}
	return attrs
}

func nonResourceAttributes(rule rbacv1.PolicyRule) *authzv1.NonResourceAttributes {
	if len(rule.Verbs) == 0 || len(rule.NonResourceURLs) == 0 || len(rule.Resources) > 0 {
		return nil
	}
	return &authzv1.NonResourceAttributes{Verb: rule.Verbs[0], Path: rule.NonResourceURLs[0]}
}
