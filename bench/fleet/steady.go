package main

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"flag"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"sync"
	"time"
)

// steady simulates scenario (a), the fleet on its 22-hour cycle, in real
// time rather than compressed: check-ins arrive as a Poisson process at
// the fleet's average rate (n / 22 h), each from a random agent of the n
// that checked in before (it resumes its TLS session and sends the ETag of
// its last answer, so the answer is 304, as on a day with no new
// approval). It measures the server's CPU share over the whole window
// (background work included) and the check-ins' latency.
func steady(args []string) error {
	fs := flag.NewFlagSet("steady", flag.ExitOnError)
	data := fs.String("data", "", "server data directory (fleet setup ran)")
	url := fs.String("url", "", "server base URL")
	n := fs.Int("n", 100000, "agents in the fleet (sets the rate: n / cycle)")
	cycle := fs.Duration("cycle", 22*time.Hour, "check-in interval of every agent")
	dur := fs.Duration("d", 2*time.Minute, "measured window")
	pids := fs.String("pid", "", "server process ids to measure")
	fs.Parse(args)
	key, agents, err := loadFleet(*data)
	if err != nil {
		return err
	}
	if *n > len(agents) {
		return fmt.Errorf("-n %d: setup made %d agents", *n, len(agents))
	}
	pool, err := caPool(*data)
	if err != nil {
		return err
	}
	rate := float64(*n) / cycle.Seconds()
	// The arrivals of the window, drawn first; each agent's previous
	// cycle (a session to resume and an ETag) is made before the clock
	// runs.
	var at []time.Duration
	var who []int
	for t := time.Duration(0); ; {
		t += time.Duration(rand.ExpFloat64() / rate * float64(time.Second))
		if t >= *dur {
			break
		}
		at, who = append(at, t), append(who, rand.IntN(*n))
	}
	ctx := context.Background()
	sessions := map[int]tls.ClientSessionCache{}
	// get is agent i's check-in on a new connection, resuming its session.
	get := func(i int, etag string) (string, int, error) {
		c, err := openAgent(ctx, agents[i], i, *url, key, pool, clientOpts{sessions: sessions[i]})
		if err != nil {
			return "", 0, err
		}
		defer c.close()
		return checkin(c, etag)
	}
	etags := map[int]string{}
	for _, i := range who {
		if _, ok := sessions[i]; ok {
			continue
		}
		sessions[i] = tls.NewLRUClientSessionCache(1)
		etag, _, err := get(i, "")
		if err != nil {
			return fmt.Errorf("agent %d's previous cycle: %w", i, err)
		}
		etags[i] = etag
	}
	lat := make([]time.Duration, len(at))
	var mu sync.Mutex
	var errs, not304 int64
	var wg sync.WaitGroup
	before := readProc(parsePIDs(*pids))
	start := time.Now()
	for k := range at {
		time.Sleep(time.Until(start.Add(at[k])))
		wg.Go(func() {
			i := who[k]
			t := time.Now()
			_, code, err := get(i, etags[i])
			lat[k] = time.Since(t)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				errs++
			} else if code != http.StatusNotModified {
				not304++
			}
		})
	}
	time.Sleep(time.Until(start.Add(*dur)))
	wg.Wait()
	el := time.Since(start)
	after := readProc(parsePIDs(*pids))
	r := summarize("steady", "bulwark", lat, el, before, after)
	r.Errors = errs + not304
	return json.NewEncoder(os.Stdout).Encode(map[string]any{"result": r, "fleet": *n, "cycle_h": cycle.Hours(), "rate_per_s": rate,
		"server_cpu_share_pct": float64(after.cpu-before.cpu) / float64(el) * 100})
}
