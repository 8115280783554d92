package ratelimit

import (
	"fmt"
	"testing"
	"time"
)

func TestPrefix(t *testing.T) {
	tests := []struct{ addr, want string }{
		{"192.0.2.7:4431", "192.0.2.7"},
		{"192.0.2.8:4431", "192.0.2.8"},
		{"[2001:db8:1:2:aaaa::1]:443", "2001:db8:1:2::/64"},
		{"[2001:db8:1:2:ffff:ffff:ffff:ffff]:1", "2001:db8:1:2::/64"},
		{"[2001:db8:1:3::1]:1", "2001:db8:1:3::/64"},
		{"[::ffff:192.0.2.7]:80", "192.0.2.7"},
		{"[fe80::1%eth0]:80", "fe80::/64"},
		{"198.51.100.1", "198.51.100.1"},
		{"@", "@"},
	}
	for _, tt := range tests {
		if got := Prefix(tt.addr); got != tt.want {
			t.Errorf("Prefix(%q) = %q, want %q", tt.addr, got, tt.want)
		}
	}
}

// TestAttackIPv6AddressRotation: every address of one /64 shares a bucket.
func TestAttackIPv6AddressRotation(t *testing.T) {
	l := New(1, 5, 100)
	now := time.Unix(1e9, 0)
	allowed := 0
	for i := range 1000 {
		if l.Allow(Prefix(fmt.Sprintf("[2001:db8:0:1::%x]:443", i+1)), now) {
			allowed++
		}
	}
	if allowed != 5 {
		t.Fatalf("%d of 1000 addresses of one /64 allowed, want the burst of 5", allowed)
	}
}

// TestAttackTableFloodKeepsAttacker: an attacker that is being throttled
// stays throttled while a flood of new keys fills the table, and the table
// stays bounded.
func TestAttackTableFloodKeepsAttacker(t *testing.T) {
	const max = 100
	l := New(1, 3, max)
	now := time.Unix(1e9, 0)
	for l.Allow("attacker", now) {
	}
	for i := range 10 * max {
		l.Allow(fmt.Sprintf("flood-%d", i), now)
		if i%10 == 0 && l.Allow("attacker", now) {
			t.Fatalf("attacker allowed again after %d new keys", i)
		}
	}
	if n := l.Len(); n > max {
		t.Fatalf("table holds %d keys, cap %d", n, max)
	}
	if blocked, wait := l.Blocked("attacker", now); !blocked || wait <= 0 {
		t.Fatalf("Blocked(attacker) = %v, %v; want blocked with a wait", blocked, wait)
	}
	// Idle keys refill and make room again: a newcomer later gets its own
	// bucket, and the attacker, now refilled too, its full burst only.
	later := now.Add(time.Minute)
	if !l.Allow("newcomer", later) {
		t.Fatal("newcomer refused after the flood ended")
	}
}

func TestOverflowIsShared(t *testing.T) {
	l := New(1, 2, 2)
	now := time.Unix(1e9, 0)
	l.Allow("a", now)
	l.Allow("b", now) // both hot: the table is full of unrefilled buckets
	got := 0
	for i := range 10 {
		if l.Allow(fmt.Sprintf("new-%d", i), now) {
			got++
		}
	}
	if got != 2 {
		t.Fatalf("%d new keys allowed while the table is full of hot keys, want the overflow burst of 2", got)
	}
}
