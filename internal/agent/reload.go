package agent

// SetPolicy replaces the install policy (SIGHUP re-reads it from the
// configuration file). A running cycle finishes under the old one.
func (d *Daemon) SetPolicy(p Policy) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.statusMu.Lock()
	d.Agent.cfg.Policy = p
	d.statusMu.Unlock()
}

func (d *Daemon) policy() Policy {
	d.statusMu.Lock()
	defer d.statusMu.Unlock()
	return d.Agent.cfg.Policy
}
