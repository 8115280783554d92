package server

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"

	"golang.org/x/crypto/argon2"
	"golang.org/x/crypto/bcrypt"
)

// Console passwords are hashed with argon2id (RFC 9106) and stored in the
// PHC string format: $argon2id$v=19$m=KiB,t=passes,p=lanes$salt$key, so a
// hash records its own parameters. Hashes made before argon2id (bcrypt,
// $2a$/$2b$/$2y$) still verify, and are replaced by an argon2id hash at the
// user's next successful sign-in; so is an argon2id hash made with weaker
// parameters than the current ones.

// argonParams are argon2id's cost parameters.
type argonParams struct {
	Time    uint32 // passes
	Memory  uint32 // KiB
	Threads uint8  // lanes
}

// defaultArgon is RFC 9106's second recommended option (section 4): 3
// passes over 64 MiB in 4 lanes, about 0.1 s on one core of a 2020s server.
var defaultArgon = argonParams{Time: 3, Memory: 64 << 10, Threads: 4}

// argon is what new hashes use: the package's tests lower it; a hash
// records its own parameters, so checks work either way.
var argon = defaultArgon

const (
	argonSaltLen = 16
	argonKeyLen  = 32
)

// hashSlots bounds the argon2id computations running at once, so a burst
// of sign-ins cannot make the server hold more than 4 × Memory.
var hashSlots = make(chan struct{}, 4)

func argonKey(pw string, salt []byte, p argonParams, n int) []byte {
	hashSlots <- struct{}{}
	defer func() { <-hashSlots }()
	return argon2.IDKey([]byte(pw), salt, p.Time, p.Memory, p.Threads, uint32(n))
}

var b64 = base64.RawStdEncoding

// hashPassword returns the argon2id hash of pw with a fresh salt.
func hashPassword(pw string) (string, error) {
	salt := make([]byte, argonSaltLen)
	if _, err := rand.Read(salt); err != nil {
		return "", err
	}
	key := argonKey(pw, salt, argon, argonKeyLen)
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s", argon2.Version, argon.Memory, argon.Time, argon.Threads,
		b64.EncodeToString(salt), b64.EncodeToString(key)), nil
}

var errBadHash = errors.New("not an argon2id or bcrypt password hash")

// parseArgon2id reads a PHC argon2id string. Parameters outside what this
// server would ever make (up to 1 GiB, 16 passes, 16 lanes) are refused,
// so a damaged row cannot make a sign-in take minutes.
func parseArgon2id(h string) (argonParams, []byte, []byte, error) {
	var p argonParams
	parts := strings.Split(h, "$")
	if len(parts) != 6 || parts[0] != "" || parts[1] != "argon2id" {
		return p, nil, nil, errBadHash
	}
	var v int
	if _, err := fmt.Sscanf(parts[2], "v=%d", &v); err != nil || v != argon2.Version || parts[2] != fmt.Sprintf("v=%d", v) {
		return p, nil, nil, fmt.Errorf("argon2id version %q: want v=%d", parts[2], argon2.Version)
	}
	var m, t, l uint32
	if _, err := fmt.Sscanf(parts[3], "m=%d,t=%d,p=%d", &m, &t, &l); err != nil || parts[3] != fmt.Sprintf("m=%d,t=%d,p=%d", m, t, l) {
		return p, nil, nil, fmt.Errorf("argon2id parameters %q: want m=KiB,t=passes,p=lanes", parts[3])
	}
	if t < 1 || t > 16 || l < 1 || l > 16 || m < 8*l || m > 1<<20 {
		return p, nil, nil, fmt.Errorf("argon2id parameters %q: out of range", parts[3])
	}
	salt, err := b64.DecodeString(parts[4])
	if err != nil || len(salt) < 8 || len(salt) > 64 {
		return p, nil, nil, fmt.Errorf("argon2id salt: %w", errBadHash)
	}
	key, err := b64.DecodeString(parts[5])
	if err != nil || len(key) < 16 || len(key) > 64 {
		return p, nil, nil, fmt.Errorf("argon2id key: %w", errBadHash)
	}
	return argonParams{Time: t, Memory: m, Threads: uint8(l)}, salt, key, nil
}

func isBcrypt(h string) bool {
	return strings.HasPrefix(h, "$2a$") || strings.HasPrefix(h, "$2b$") || strings.HasPrefix(h, "$2y$")
}

// verifyPassword reports whether pw matches hash, and whether the hash
// should be replaced (bcrypt, or argon2id weaker than argon) now that the
// password is known.
func verifyPassword(hash, pw string) (ok, stale bool) {
	if isBcrypt(hash) {
		return bcrypt.CompareHashAndPassword([]byte(hash), []byte(pw)) == nil, true
	}
	p, salt, key, err := parseArgon2id(hash)
	if err != nil {
		return false, false
	}
	got := argonKey(pw, salt, p, len(key))
	ok = subtle.ConstantTimeCompare(got, key) == 1
	stale = p.Time < argon.Time || p.Memory < argon.Memory || p.Threads < argon.Threads
	return ok, stale
}
