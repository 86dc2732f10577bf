package kube

import (
	"crypto/tls"
	"encoding/base64"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"

	"go.yaml.in/yaml/v3"
)

// kubeconfig is the part of a kubeconfig file that says how to reach the
// API as its current context: kubectl's format, read as kubectl reads a
// single file given with --kubeconfig (no merging with $KUBECONFIG).
type kubeconfig struct {
	CurrentContext string `yaml:"current-context"`
	Contexts       []struct {
		Name    string
		Context struct{ Cluster, User, Namespace string }
	}
	Clusters []struct {
		Name    string
		Cluster cluster
	}
	Users []struct {
		Name string
		User user
	}
}

type cluster struct {
	Server                   string `yaml:"server"`
	CertificateAuthority     string `yaml:"certificate-authority"`
	CertificateAuthorityData string `yaml:"certificate-authority-data"`
	InsecureSkipTLSVerify    bool   `yaml:"insecure-skip-tls-verify"`
	TLSServerName            string `yaml:"tls-server-name"`
	ProxyURL                 string `yaml:"proxy-url"`
}

// user is an identity as a kubeconfig gives it. Only a token or a client
// certificate is used; the rest is read to refuse it, since acting as
// anyone else than the file says would be worse than failing.
type user struct {
	Token                 string `yaml:"token"`
	TokenFile             string `yaml:"tokenFile"`
	ClientCertificate     string `yaml:"client-certificate"`
	ClientCertificateData string `yaml:"client-certificate-data"`
	ClientKey             string `yaml:"client-key"`
	ClientKeyData         string `yaml:"client-key-data"`

	Exec         any      `yaml:"exec"`
	AuthProvider any      `yaml:"auth-provider"`
	Username     string   `yaml:"username"`
	As           string   `yaml:"as"`
	AsGroups     []string `yaml:"as-groups"`
}

// LoadKubeconfig is the API as the current context of the kubeconfig file
// at path reaches it. A token (or tokenFile) or a client certificate
// identifies the user; credential plugins (exec, auth-provider), basic
// auth and impersonation are refused, not ignored. A Deployment named
// without a namespace is in the context's.
func LoadKubeconfig(path string) (*API, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	c, u, namespace, err := parseKubeconfig(raw)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	// Relative paths in a kubeconfig are relative to the file, as kubectl
	// reads them.
	dir := filepath.Dir(path)
	api, err := connect(c.resolve(dir), u.resolve(dir), namespace)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return api, nil
}

// parseKubeconfig returns the cluster, user and namespace of a
// kubeconfig's current context, refusing a user it cannot act as.
func parseKubeconfig(raw []byte) (cluster, user, string, error) {
	var kc kubeconfig
	if err := yaml.Unmarshal(raw, &kc); err != nil {
		return cluster{}, user{}, "", err
	}
	c, u, namespace, err := kc.current()
	if err != nil {
		return cluster{}, user{}, "", err
	}
	return c, u, namespace, u.refuseUnsupported()
}

// current is the current context's cluster, user and namespace.
func (kc *kubeconfig) current() (cluster, user, string, error) {
	if kc.CurrentContext == "" {
		return cluster{}, user{}, "", errors.New("no current-context")
	}
	for _, ctx := range kc.Contexts {
		if ctx.Name != kc.CurrentContext {
			continue
		}
		var c *cluster
		for _, nc := range kc.Clusters {
			if nc.Name == ctx.Context.Cluster {
				c = &nc.Cluster
			}
		}
		var u user // a context may name no user: anonymous
		for _, nu := range kc.Users {
			if nu.Name == ctx.Context.User {
				u = nu.User
			}
		}
		if c == nil || c.Server == "" {
			return cluster{}, user{}, "", fmt.Errorf("context %q: no cluster %q with a server", ctx.Name, ctx.Context.Cluster)
		}
		return *c, u, ctx.Context.Namespace, nil
	}
	return cluster{}, user{}, "", fmt.Errorf("current-context %q is not among the contexts", kc.CurrentContext)
}

func (u user) refuseUnsupported() error {
	switch {
	case u.Exec != nil || u.AuthProvider != nil:
		return errors.New("the user authenticates with a credential plugin (exec or auth-provider), which loadtest does not run: give it a token (kubectl create token) or a client certificate")
	case u.Username != "":
		return errors.New("the user authenticates with a username and password, which the Kubernetes API no longer accepts")
	case u.As != "" || len(u.AsGroups) > 0:
		return errors.New("the user impersonates another, which loadtest does not do")
	}
	return nil
}

// resolve makes the cluster's file path absolute against dir.
func (c cluster) resolve(dir string) cluster {
	c.CertificateAuthority = within(dir, c.CertificateAuthority)
	return c
}

// resolve makes the user's file paths absolute against dir.
func (u user) resolve(dir string) user {
	u.TokenFile = within(dir, u.TokenFile)
	u.ClientCertificate = within(dir, u.ClientCertificate)
	u.ClientKey = within(dir, u.ClientKey)
	return u
}

// within is path, relative to dir unless it is absolute or empty.
func within(dir, path string) string {
	if path == "" || filepath.IsAbs(path) {
		return path
	}
	return filepath.Join(dir, path)
}

// connect builds the API client for cluster c as user u. The CA is
// c's own when it names one (inline data first, as kubectl prefers), else
// the system's roots.
func connect(c cluster, u user, namespace string) (*API, error) {
	tlsConfig := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: c.TLSServerName, InsecureSkipVerify: c.InsecureSkipTLSVerify}
	ca, caSource, err := material(c.CertificateAuthorityData, c.CertificateAuthority, "certificate-authority")
	if err != nil {
		return nil, err
	}
	if ca != nil {
		if c.InsecureSkipTLSVerify {
			return nil, errors.New("a certificate-authority and insecure-skip-tls-verify together: choose one")
		}
		if tlsConfig.RootCAs, err = certPool(ca, caSource); err != nil {
			return nil, err
		}
	}
	if err := clientCertificate(tlsConfig, u); err != nil {
		return nil, err
	}
	var proxy *url.URL
	if c.ProxyURL != "" {
		if proxy, err = url.Parse(c.ProxyURL); err != nil {
			return nil, fmt.Errorf("proxy-url: %w", err)
		}
	}
	token := func() (string, error) { return u.Token, nil }
	if u.TokenFile != "" {
		// kubectl reads a tokenFile over an inline token, again and again.
		token = fileToken(u.TokenFile)
	}
	return newAPI(c.Server, tlsConfig, proxy, token, namespace), nil
}

// clientCertificate adds the user's client certificate, if it has one, to
// tlsConfig.
func clientCertificate(tlsConfig *tls.Config, u user) error {
	cert, _, err := material(u.ClientCertificateData, u.ClientCertificate, "client-certificate")
	if err != nil {
		return err
	}
	key, _, err := material(u.ClientKeyData, u.ClientKey, "client-key")
	if err != nil {
		return err
	}
	if cert == nil && key == nil {
		return nil
	}
	pair, err := tls.X509KeyPair(cert, key)
	if err != nil {
		return fmt.Errorf("client certificate: %w", err)
	}
	tlsConfig.Certificates = []tls.Certificate{pair}
	return nil
}

// material is a kubeconfig field's PEM content, from its base64 -data form
// or else from the file it names, with where it came from; nil when
// neither is set.
func material(data, file, field string) ([]byte, string, error) {
	if data != "" {
		b, err := base64.StdEncoding.DecodeString(data)
		if err != nil {
			return nil, "", fmt.Errorf("%s-data: %w", field, err)
		}
		return b, field + "-data", nil
	}
	if file == "" {
		return nil, "", nil
	}
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, "", fmt.Errorf("%s: %w", field, err)
	}
	return b, file, nil
}
