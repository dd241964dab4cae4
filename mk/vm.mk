# `make vmcheck`: the BPF_PROG_RUN suites, one two-firewall sync test and the
# asymmetric-routing defer test (every release path) on Debian's 6.1 kernel,
# in one throw-away VM (tests/vm/, docs/ci-matrix.md).
# Everything is built on the host first; the guest only runs the suites.
# Knobs (environment): VMTEST_RUNNER=auto|qemu|vng, VMTEST_PKG=<kernel
# package>, VMTEST_TIMEOUT, VMTEST_SUITE_TIMEOUT, VMTEST_KDIR.
.PHONY: vmcheck vmkernel

vmkernel:
	./scripts/deps.sh vm
	tests/vm/get-kernel.sh

vmcheck: deps vmkernel
	$(MAKE) tests
	BUILD=$(BUILD) tests/vm/run-vm-tests.sh $(VMTEST_SUITES)
