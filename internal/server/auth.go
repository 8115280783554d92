package server

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base32"
	"encoding/hex"
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/bulwarkhq/bulwark/internal/pki"
	"github.com/bulwarkhq/bulwark/internal/store"
)

// Token secrets: a prefix naming the kind, then 32 random bytes in base32.
const (
	apiTokenPrefix    = "bwa_"
	enrollTokenPrefix = "bwe_"
	maxTokenLen       = 128
)

var b32 = base32.StdEncoding.WithPadding(base32.NoPadding)

// HashToken is how token secrets are stored: hex SHA-256. The secrets are
// 256 random bits, so a fast hash is enough.
func HashToken(secret string) string {
	h := sha256.Sum256([]byte(secret))
	return hex.EncodeToString(h[:])
}

func randomString(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return strings.ToLower(b32.EncodeToString(b))
}

// newToken stores t with a fresh id and secret and returns the secret.
func (s *Server) newToken(ctx context.Context, t *store.Token) (string, *store.Token, error) {
	prefix := apiTokenPrefix
	if t.Kind == store.KindEnroll {
		prefix = enrollTokenPrefix
	}
	secret := prefix + randomString(32)
	t.ID = "tok-" + randomString(5)
	t.Hash = HashToken(secret)
	t.CreatedAt = s.now()
	if err := s.st.CreateToken(ctx, t); err != nil {
		return "", nil, err
	}
	return secret, t, nil
}

var roleRank = map[string]int{store.RoleViewer: 1, store.RoleApprover: 2, store.RoleAdmin: 3}

type ctxKey int

const tokenKey ctxKey = 1

// authorize checks the bearer token and its role against need.
func (s *Server) authorize(r *http.Request, need string) (*store.Token, error) {
	h := r.Header.Get("Authorization")
	secret, ok := strings.CutPrefix(h, "Bearer ")
	if !ok || secret == "" {
		return nil, errorf(http.StatusUnauthorized, "send Authorization: Bearer <token>")
	}
	if len(secret) > maxTokenLen || !strings.HasPrefix(secret, apiTokenPrefix) {
		return nil, errorf(http.StatusUnauthorized, "not an API token")
	}
	t, err := s.st.TokenByHash(r.Context(), HashToken(secret))
	if errors.Is(err, store.ErrNotFound) {
		return nil, errorf(http.StatusUnauthorized, "unknown token")
	} else if err != nil {
		return nil, err
	}
	if t.Kind != store.KindAPI || !t.Usable(s.now()) {
		return nil, errorf(http.StatusUnauthorized, "token is expired or revoked")
	}
	if roleRank[t.Role] < roleRank[need] {
		return nil, errorf(http.StatusForbidden, "this needs the %s role; the token has %s", need, t.Role)
	}
	return t, nil
}

// withRole wraps an API handler with bearer-token authorization.
func (s *Server) withRole(need string, f apiFunc) http.HandlerFunc {
	return s.api(func(w http.ResponseWriter, r *http.Request) error {
		key, now := clientKey(r), time.Now()
		if blocked, wait := s.authFailLimit.Blocked(key, now); blocked {
			s.metrics.authFailures.Inc()
			return tooMany(w, wait, "requests with a bad token")
		}
		t, err := s.authorize(r, need)
		if err != nil {
			s.metrics.authFailures.Inc()
			if he := (*httpError)(nil); errors.As(err, &he) && he.code == http.StatusUnauthorized {
				s.authFailLimit.Allow(key, now)
			}
			return err
		}
		note := &auditNote{}
		ctx := context.WithValue(context.WithValue(r.Context(), tokenKey, t), auditNoteKey{}, note)
		if err := f(w, r.WithContext(ctx)); err != nil {
			return err
		}
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			s.auditAPI(r, t, note.detail)
		}
		return nil
	})
}

func tokenFrom(ctx context.Context) *store.Token {
	t, _ := ctx.Value(tokenKey).(*store.Token)
	return t
}

// agentFromTLS identifies an agent by its client certificate: issued by the
// site CA (checked in the handshake), for client use, naming an agent the
// store knows with that certificate's serial, and active.
func (s *Server) agentFromTLS(r *http.Request) (*store.Agent, error) {
	if r.TLS == nil || len(r.TLS.VerifiedChains) == 0 || len(r.TLS.VerifiedChains[0]) == 0 {
		return nil, errorf(http.StatusUnauthorized, "agent requests need the client certificate from enrollment")
	}
	leaf := r.TLS.VerifiedChains[0][0]
	if !hasClientUse(leaf) {
		return nil, errorf(http.StatusUnauthorized, "certificate is not an agent certificate")
	}
	a, err := s.st.AgentIdentity(r.Context(), leaf.Subject.CommonName)
	if errors.Is(err, store.ErrNotFound) {
		return nil, errorf(http.StatusForbidden, "agent is not enrolled (removed?): enroll again")
	} else if err != nil {
		return nil, err
	}
	switch serial := pki.SerialString(leaf.SerialNumber); {
	case serial == a.CertSerial:
		if a.PrevCertSerial != "" {
			// The renewed certificate is in use: the one it replaced is
			// refused from now on.
			if err := s.st.ForgetPrevCert(r.Context(), a.ID); err != nil {
				return nil, err
			}
		}
	case serial == a.PrevCertSerial:
		// A renewal whose answer the agent may not have received.
	default:
		return nil, errorf(http.StatusForbidden, "certificate was replaced by a later enrollment")
	}
	switch a.Status {
	case store.AgentActive:
	case store.AgentReenroll:
		return nil, &httpError{code: http.StatusConflict, msg: "re-enroll: " + a.Flag}
	case store.AgentPending:
		return nil, errorf(http.StatusForbidden, "agent is pending an admin's approval: %s", a.Flag)
	default:
		return nil, errorf(http.StatusForbidden, "agent is %s", a.Status)
	}
	return a, nil
}

func hasClientUse(c *x509.Certificate) bool {
	for _, u := range c.ExtKeyUsage {
		if u == x509.ExtKeyUsageClientAuth {
			return true
		}
	}
	return false
}
