package agent

import (
	"crypto/tls"
	"log/slog"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"golang.org/x/time/rate"

	"github.com/bulwarkhq/bulwark/internal/catalog"
	"github.com/bulwarkhq/bulwark/internal/facts"
	"github.com/bulwarkhq/bulwark/internal/fetch"
	"github.com/bulwarkhq/bulwark/internal/install"
	"github.com/bulwarkhq/bulwark/internal/tuf"
	"github.com/bulwarkhq/bulwark/internal/wire"
)

// tufCacheDir, in the state directory, holds the verified metadata of every
// repository the agent reads; enrolling again empties it.
const tufCacheDir = "tuf"

// vendorCache names a vendor repository's cache by its name and first root,
// so that metadata verified from one root never seeds a client of another.
func vendorCache(r wire.RepoRef) string {
	return "vendor-" + r.Name + "-" + strings.TrimPrefix(tuf.RootFingerprint(r.Root), "sha256:")[:16]
}

// Build wires a Daemon from the agent's settings and its enrollment: the
// mutual-TLS client, the verifying clients of the site and vendor
// repositories (their caches under the state directory), the machine's
// facts, the real install handlers and the server client. close releases
// the agent's files.
func Build(s *Settings, arch, agentVersion string, log *slog.Logger) (d *Daemon, sc *ServerClient, close func(), err error) {
	e, err := LoadEnrollment(s.StateDir)
	if err != nil {
		return nil, nil, nil, err
	}
	pins, err := vendorPins(e, s)
	if err != nil {
		return nil, nil, nil, err
	}
	tlsConf, err := e.TLSConfig(s.StateDir)
	if err != nil {
		return nil, nil, nil, err
	}
	// HTTP/1.1: a check-in cycle costs the server less CPU than over HTTP/2
	// (bench/fleet, docs/BENCHMARKS.md), and an agent makes its requests
	// one after another anyway. An empty TLSNextProto turns HTTP/2 off.
	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: tlsConf, IdleConnTimeout: 90 * time.Second,
		TLSNextProto: map[string]func(string, *tls.Conn) http.RoundTripper{}}}
	// The limiter's rate follows bandwidth_limit as agent.yaml and the
	// group policy set it (applyPolicy); unlimited is rate.Inf.
	fo := fetch.Options{HTTPClient: hc, Logger: log, UserAgent: "bulwark-agent/" + agentVersion,
		Limiter: rate.NewLimiter(rate.Inf, burstFor(s.Rate))}
	fetcher := fetch.New(fo)
	newClient := func(r wire.RepoRef, cache string) (*tuf.Client, error) {
		return tuf.NewClient(tuf.ClientConfig{TrustedRoot: r.Root, MetadataURL: r.MetadataURL, TargetsURL: r.TargetsURL,
			CacheDir: filepath.Join(s.StateDir, tufCacheDir, cache), Fetcher: fetcher})
	}
	site, err := newClient(e.Site, "site")
	if err != nil {
		return nil, nil, nil, err
	}
	vendors := map[string]*tuf.Client{}
	for _, v := range e.Vendors {
		if err := catalog.CheckVendorName(v.Name); err != nil {
			log.Warn("enrollment names a vendor repository badly; ignoring it", "err", err)
			continue
		}
		if vendors[v.Name], err = newClient(v, vendorCache(v)); err != nil {
			return nil, nil, nil, err
		}
	}
	m, err := facts.New(facts.Config{Root: s.Root, Arch: arch, Logger: log})
	if err != nil {
		return nil, nil, nil, err
	}
	a, err := Open(Config{StateDir: s.StateDir, Root: s.Root, Policy: s.Policy, Logger: log,
		Handlers: InstallHandlers(s.Root, s.StateDir, install.Options{Logger: log}),
		Reboot:   Reboot{Command: s.RebootCommand, BootIDPath: s.BootIDPath}})
	if err != nil {
		return nil, nil, nil, err
	}
	sc = NewServerClient(hc, e, e.MachineID)
	notifier := Notifier{Log: log}
	d = &Daemon{
		Agent: a, Sources: Sources{Site: site, Vendors: vendors, Pins: pins, Group: e.Group}, Reporter: sc, Server: e.Server,
		Textfile: s.MetricsTextfile, AgentVersion: agentVersion,
		LockdownProfile: s.LockdownProfile,
		// Scheduled cycles download in the background, yielding to other
		// traffic; `bulwark agent install` switches to the foreground.
		Options: CycleOptions{AgentID: e.AgentID, Facts: m, Notify: notifier.Notify, Download: fetch.FileOptions{Mode: fetch.Background}},
		Inventory: func() (any, error) {
			inv, err := m.Inventory()
			if err != nil {
				return nil, err
			}
			return InventoryOf(inv, agentVersion), nil
		},
	}
	// The group policy the server delivered last applies until the next
	// check-in brings a newer one.
	d.pol = policyState{limiter: fo.Limiter, stateDir: s.StateDir}
	g, err := loadGroupPolicy(s.StateDir)
	if err != nil {
		log.Warn("ignoring the kept group policy", "err", err)
		g = nil
	}
	if err := d.applyPolicy(s.Local, g); err != nil {
		log.Warn("the kept group policy cannot apply over agent.yaml; using agent.yaml alone", "err", err)
		if err := d.applyPolicy(s.Local, nil); err != nil {
			a.Close()
			return nil, nil, nil, err
		}
	}
	d.newVendor = func(r wire.RepoRef) (*tuf.Client, error) { return newClient(r, vendorCache(r)) }
	d.remember = func(r wire.RepoRef) error {
		e.Vendors = slices.DeleteFunc(e.Vendors, func(o wire.RepoRef) bool { return o.Name == r.Name })
		e.Vendors = append(e.Vendors, r)
		return saveEnrollment(s.StateDir, e)
	}
	return d, sc, func() { a.Close() }, nil
}

// vendorPins are the vendor roots pinned at enrollment (--vendor) and in the
// configuration file (vendor_pins): they decide together, and a
// contradiction stops the agent rather than letting either win.
func vendorPins(e *Enrollment, s *Settings) (map[string]string, error) {
	var pins tuf.PinSet
	if err := pins.Add("the enrollment (--vendor)", e.VendorPins); err != nil {
		return nil, err
	}
	if err := pins.Add("the configuration (vendor_pins)", s.VendorPins); err != nil {
		return nil, err
	}
	return pins.Pins, nil
}
