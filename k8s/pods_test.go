package k8s

import (
	"regexp"
	"strings"
	"testing"

	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
)

// Every kustomization's objects sit in the namespace it deploys to.
func TestObjectsLiveInTheirNamespace(t *testing.T) {
	t.Parallel()
	want := map[string]string{
		base:       "parley",
		staging:    "parley-staging",
		production: "parley",
		autoscale:  "parley-staging",
		adapter:    "monitoring",
		onKind:     "parley-staging",
	}
	for _, dir := range kustomizations {
		m := rendered(t, dir)
		for _, o := range m.objects {
			meta := metaOf(o)
			if ns, ok := o.(*corev1.Namespace); ok {
				if ns.Name != want[dir] {
					t.Errorf("%s: creates Namespace %s, want %s", dir, ns.Name, want[dir])
				}
				continue
			}
			if meta.GetNamespace() != want[dir] {
				t.Errorf("%s: %s %s is in namespace %q, want %q", dir, kindOf(o), meta.GetName(), meta.GetNamespace(), want[dir])
			}
		}
	}
}

// The namespace refuses at admission any pod that breaks the restricted
// Pod Security Standard, and every pod here is written to pass it.
func TestPodsMeetTheRestrictedPodSecurityStandard(t *testing.T) {
	t.Parallel()
	for _, dir := range withServer {
		ns := all[*corev1.Namespace](rendered(t, dir))
		if len(ns) != 1 || ns[0].Labels["pod-security.kubernetes.io/enforce"] != "restricted" {
			t.Errorf("%s: the namespace does not enforce the restricted Pod Security Standard", dir)
		}
	}
	for _, dir := range kustomizations {
		m := rendered(t, dir)
		for _, p := range podTemplates(m) {
			t.Run(dir+"/"+p.owner, func(t *testing.T) {
				checkRestricted(t, p.spec)
			})
		}
		for _, am := range all[*monitoringv1.Alertmanager](m) {
			t.Run(dir+"/Alertmanager/"+am.Name, func(t *testing.T) {
				// The operator writes the containers' security contexts
				// (no privilege escalation, read-only root, no
				// capabilities); the pod's is ours.
				checkRestricted(t, corev1.PodSpec{SecurityContext: am.Spec.SecurityContext})
			})
		}
	}
	// The image's user: a different one would not own what the image
	// prepared for it.
	for _, dir := range withServer {
		sc := serverDeployment(t, rendered(t, dir)).Spec.Template.Spec.SecurityContext
		if sc == nil || sc.RunAsUser == nil || *sc.RunAsUser != 65532 {
			t.Errorf("%s: the server does not run as 65532, the image's user", dir)
		}
	}
}

// checkRestricted checks a pod against the restricted profile, with the
// container's settings taking precedence over the pod's as the kubelet
// applies them.
func checkRestricted(t *testing.T, spec corev1.PodSpec) {
	t.Helper()
	if spec.HostNetwork || spec.HostPID || spec.HostIPC {
		t.Error("shares a host namespace")
	}
	for _, v := range spec.Volumes {
		if v.HostPath != nil {
			t.Errorf("volume %s is a hostPath", v.Name)
		}
	}
	pod := spec.SecurityContext
	if pod == nil {
		pod = &corev1.PodSecurityContext{}
	}
	if pod.RunAsUser != nil && *pod.RunAsUser == 0 {
		t.Error("the pod runs as root")
	}
	for _, c := range containers(spec) {
		sc := c.SecurityContext
		if sc == nil {
			sc = &corev1.SecurityContext{}
		}
		nonRoot := sc.RunAsNonRoot
		if nonRoot == nil {
			nonRoot = pod.RunAsNonRoot
		}
		if nonRoot == nil || !*nonRoot {
			t.Errorf("%s: runAsNonRoot is not set", c.Name)
		}
		if sc.RunAsUser != nil && *sc.RunAsUser == 0 {
			t.Errorf("%s: runs as root", c.Name)
		}
		seccomp := sc.SeccompProfile
		if seccomp == nil {
			seccomp = pod.SeccompProfile
		}
		if seccomp == nil || (seccomp.Type != corev1.SeccompProfileTypeRuntimeDefault && seccomp.Type != corev1.SeccompProfileTypeLocalhost) {
			t.Errorf("%s: no RuntimeDefault seccomp profile", c.Name)
		}
		if sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation {
			t.Errorf("%s: allowPrivilegeEscalation is not false", c.Name)
		}
		if sc.Privileged != nil && *sc.Privileged {
			t.Errorf("%s: privileged", c.Name)
		}
		if sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem {
			t.Errorf("%s: the root filesystem is writable", c.Name)
		}
		if sc.Capabilities == nil || len(sc.Capabilities.Drop) != 1 || sc.Capabilities.Drop[0] != "ALL" {
			t.Errorf("%s: does not drop ALL capabilities", c.Name)
		} else if len(sc.Capabilities.Add) > 0 {
			t.Errorf("%s: adds capabilities %v", c.Name, sc.Capabilities.Add)
		}
	}
}

func TestContainersRequestAndLimitCPUAndMemory(t *testing.T) {
	t.Parallel()
	for _, dir := range kustomizations {
		m := rendered(t, dir)
		check := func(owner, name string, r corev1.ResourceRequirements) {
			for _, res := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory} {
				if _, ok := r.Requests[res]; !ok {
					t.Errorf("%s: %s %s: no %s request", dir, owner, name, res)
				}
				if _, ok := r.Limits[res]; !ok {
					t.Errorf("%s: %s %s: no %s limit", dir, owner, name, res)
				}
			}
		}
		for _, p := range podTemplates(m) {
			for _, c := range containers(p.spec) {
				check(p.owner, c.Name, c.Resources)
			}
		}
		for _, am := range all[*monitoringv1.Alertmanager](m) {
			check("Alertmanager/"+am.Name, "alertmanager", am.Spec.Resources)
		}
	}
}

// version is what a pinned tag starts with: a version number, not a name
// that moves (latest, main, stable, alpine).
var version = regexp.MustCompile(`^v?[0-9]+(\.[0-9]+)+([.-][0-9A-Za-z.-]+)?$`)

// pinned reports whether image names a fixed version: a digest, or a tag
// that is a version number.
func pinned(image string) bool {
	if _, digest, ok := strings.Cut(image, "@"); ok {
		return strings.HasPrefix(digest, "sha256:")
	}
	slash := strings.LastIndex(image, "/")
	_, tag, ok := strings.Cut(image[slash+1:], ":")
	return ok && version.MatchString(tag)
}

func TestPinnedRecognisesVersionsAndDigests(t *testing.T) {
	t.Parallel()
	for image, want := range map[string]bool{
		"ghcr.io/parleychat/parley:0.1.0":          true,
		"postgres:16.4-alpine":                     true,
		"quay.io/prometheus/alertmanager:v0.28.1":  true,
		"registry:5000/parley@sha256:0123456789ab": true,
		"ghcr.io/parleychat/parley":                false,
		"ghcr.io/parleychat/parley:latest":         false,
		"redis:alpine":                             false,
		"registry:5000/parley":                     false,
		"ghcr.io/parleychat/parley:main":           false,
	} {
		if got := pinned(image); got != want {
			t.Errorf("pinned(%q) = %v, want %v", image, got, want)
		}
	}
}

func TestEveryImageIsPinnedToAVersion(t *testing.T) {
	t.Parallel()
	for _, dir := range deployables {
		m := rendered(t, dir)
		for _, p := range podTemplates(m) {
			for _, c := range containers(p.spec) {
				if !pinned(c.Image) {
					t.Errorf("%s: %s %s: image %q is not pinned to a version", dir, p.owner, c.Name, c.Image)
				}
			}
		}
		for _, am := range all[*monitoringv1.Alertmanager](m) {
			if am.Spec.Image == nil || !pinned(*am.Spec.Image) {
				t.Errorf("%s: Alertmanager %s: the image is not pinned (the operator would pick its own default)", dir, am.Name)
			}
		}
	}
}

// The load generator comes from the same commit as the server it tests:
// its wire types are the protocol of that commit.
func TestLoadGeneratorImagesMatchTheServersTag(t *testing.T) {
	t.Parallel()
	tag := func(image string) string {
		_, t, _ := strings.Cut(image[strings.LastIndex(image, "/")+1:], ":")
		return t
	}
	server := tag(serverContainer(t, serverDeployment(t, rendered(t, staging))).Image)
	for _, dir := range []string{staging, autoscale} {
		for _, p := range podTemplates(rendered(t, dir)) {
			for _, c := range p.spec.Containers {
				if strings.Contains(c.Image, "/parley-loadtest") && tag(c.Image) != server {
					t.Errorf("%s: %s runs %s, the server runs tag %s", dir, p.owner, c.Image, server)
				}
			}
		}
	}
}

// A pod gets a Kubernetes API token only if its service account is granted
// something: the server never talks to the API.
func TestOnlyPodsThatUseTheAPIMountAToken(t *testing.T) {
	t.Parallel()
	for _, dir := range kustomizations {
		m := rendered(t, dir)
		bound := map[string]bool{}
		for _, rb := range all[*rbacv1.RoleBinding](m) {
			for _, s := range rb.Subjects {
				if s.Kind == rbacv1.ServiceAccountKind {
					bound[s.Name] = true
				}
			}
		}
		accounts := map[string]*corev1.ServiceAccount{}
		for _, sa := range all[*corev1.ServiceAccount](m) {
			accounts[sa.Name] = sa
		}
		for _, p := range podTemplates(m) {
			name := p.spec.ServiceAccountName
			if name == "" {
				name = "default"
			}
			mounted := true
			if sa := accounts[name]; sa != nil && sa.AutomountServiceAccountToken != nil {
				mounted = *sa.AutomountServiceAccountToken
			}
			if p.spec.AutomountServiceAccountToken != nil {
				mounted = *p.spec.AutomountServiceAccountToken
			}
			if mounted && !bound[name] {
				t.Errorf("%s: %s mounts a token of service account %s, which is granted nothing", dir, p.owner, name)
			}
		}
		for _, am := range all[*monitoringv1.Alertmanager](m) {
			mounted := true
			if sa := accounts[am.Spec.ServiceAccountName]; sa != nil && sa.AutomountServiceAccountToken != nil {
				mounted = *sa.AutomountServiceAccountToken
			}
			if am.Spec.AutomountServiceAccountToken != nil {
				mounted = *am.Spec.AutomountServiceAccountToken
			}
			if mounted {
				t.Errorf("%s: Alertmanager %s mounts a token it has no use for", dir, am.Name)
			}
		}
	}
	for _, dir := range withServer {
		m := rendered(t, dir)
		d := serverDeployment(t, m)
		sa := named[*corev1.ServiceAccount](t, m, d.Spec.Template.Spec.ServiceAccountName)
		if sa.AutomountServiceAccountToken == nil || *sa.AutomountServiceAccountToken {
			t.Errorf("%s: service account %s would hand its token to any pod using it", dir, sa.Name)
		}
		if a := d.Spec.Template.Spec.AutomountServiceAccountToken; a == nil || *a {
			t.Errorf("%s: the server's pods mount a service account token", dir)
		}
	}
}
