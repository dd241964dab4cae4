# `make install` / `make uninstall`. Knobs: PREFIX (/usr/local), DESTDIR
# (staging root), BINDIR ($(PREFIX)/sbin), MANDIR ($(PREFIX)/share/man),
# BPFDIR ($(PREFIX)/lib/bpf), UNITDIR ($(PREFIX)/lib/systemd/system),
# SYSCONFDIR (/etc), EXAMPLEDIR. The agent and pfsyncctl look for the BPF
# object next to themselves (build/), then in ../lib/bpf relative to
# themselves, then in $(BPFDIR): the last is compiled in, so objects are
# rebuilt when BPFDIR or SYSCONFDIR change.
PREFIX ?= /usr/local
BINDIR ?= $(PREFIX)/sbin
MANDIR ?= $(PREFIX)/share/man
BPFDIR ?= $(PREFIX)/lib/bpf
UNITDIR ?= $(PREFIX)/lib/systemd/system
SYSCONFDIR ?= /etc
EXAMPLEDIR ?= $(PREFIX)/share/doc/pfsync-xdp/examples
INSTALL ?= install

CFLAGS += -DPFSYNC_BPF_OBJ_DEFAULT=\"$(BPFDIR)/pfsync_xdp.o\" -DPFSYNC_SYSCONFDIR=\"$(SYSCONFDIR)\"

# rewritten only when the paths change, so a plain `make` rebuilds nothing
INSTALL_PATHS_STAMP := $(BUILD)/.install-paths
INSTALL_PATHS := $(BPFDIR):$(SYSCONFDIR)
$(shell mkdir -p $(BUILD) && [ "$$(cat $(INSTALL_PATHS_STAMP) 2>/dev/null)" = "$(INSTALL_PATHS)" ] || \
	echo "$(INSTALL_PATHS)" >$(INSTALL_PATHS_STAMP))
$(foreach d,obj san,$(BUILD)/$(d)/lib/pfsync_loader.o $(patsubst %.c,$(BUILD)/$(d)/%.o,$(AGENT_SRCS))): \
	$(INSTALL_PATHS_STAMP)

MAN_PAGES := man/pfsync-agent.8 man/pfsyncctl.8 man/pfsync.conf.5
EXAMPLE_FILES := examples/pfsync.conf examples/pfsync-agent.service examples/keepalived.conf
EXAMPLE_SCRIPTS := examples/ucarp-up.sh examples/ucarp-down.sh
# the files name the default paths; installed copies name the configured ones
INSTALL_SED := sed -e 's|/usr/local/sbin|$(BINDIR)|g' -e 's|/usr/local/lib/bpf|$(BPFDIR)|g' \
	-e 's|/etc/pfsync|$(SYSCONFDIR)/pfsync|g'

.PHONY: install uninstall
install: $(BUILD)/pfsync-agent $(BUILD)/pfsyncctl $(BUILD)/pfsync_xdp.o $(BUILD)/pfsync_bulk.o $(BUILD)/pfsync_iter.o
	$(INSTALL) -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(BPFDIR) $(DESTDIR)$(MANDIR)/man5 \
		$(DESTDIR)$(MANDIR)/man8 $(DESTDIR)$(UNITDIR) $(DESTDIR)$(EXAMPLEDIR)
	$(INSTALL) -d -m 0750 $(DESTDIR)$(SYSCONFDIR)/pfsync
	$(INSTALL) -m 0755 $(BUILD)/pfsync-agent $(BUILD)/pfsyncctl $(DESTDIR)$(BINDIR)/
	$(INSTALL) -m 0644 $(BUILD)/pfsync_xdp.o $(DESTDIR)$(BPFDIR)/pfsync_xdp.o
	$(INSTALL) -m 0644 $(BUILD)/pfsync_bulk.o $(DESTDIR)$(BPFDIR)/pfsync_bulk.o
	$(INSTALL) -m 0644 $(BUILD)/pfsync_iter.o $(DESTDIR)$(BPFDIR)/pfsync_iter.o
	for f in $(MAN_PAGES); do \
		$(INSTALL_SED) $$f >$(DESTDIR)$(MANDIR)/man$${f##*.}/$${f##*/} || exit 1; \
		chmod 0644 $(DESTDIR)$(MANDIR)/man$${f##*.}/$${f##*/}; done
	$(INSTALL_SED) examples/pfsync-agent.service >$(DESTDIR)$(UNITDIR)/pfsync-agent.service
	chmod 0644 $(DESTDIR)$(UNITDIR)/pfsync-agent.service
	$(INSTALL) -m 0644 $(EXAMPLE_FILES) $(DESTDIR)$(EXAMPLEDIR)/
	$(INSTALL) -m 0755 $(EXAMPLE_SCRIPTS) $(DESTDIR)$(EXAMPLEDIR)/
	# an example next to the real file; the real one is the admin's and never overwritten
	$(INSTALL) -m 0600 examples/pfsync.conf $(DESTDIR)$(SYSCONFDIR)/pfsync/pfsync.conf.example

uninstall:
	rm -f $(DESTDIR)$(BINDIR)/pfsync-agent $(DESTDIR)$(BINDIR)/pfsyncctl \
		$(DESTDIR)$(BPFDIR)/pfsync_xdp.o $(DESTDIR)$(BPFDIR)/pfsync_bulk.o \
		$(DESTDIR)$(BPFDIR)/pfsync_iter.o \
		$(DESTDIR)$(UNITDIR)/pfsync-agent.service \
		$(DESTDIR)$(MANDIR)/man8/pfsync-agent.8 $(DESTDIR)$(MANDIR)/man8/pfsyncctl.8 \
		$(DESTDIR)$(MANDIR)/man5/pfsync.conf.5 \
		$(DESTDIR)$(SYSCONFDIR)/pfsync/pfsync.conf.example \
		$(addprefix $(DESTDIR)$(EXAMPLEDIR)/,$(notdir $(EXAMPLE_FILES) $(EXAMPLE_SCRIPTS)))
	-rmdir $(DESTDIR)$(EXAMPLEDIR) $(DESTDIR)$(PREFIX)/share/doc/pfsync-xdp $(DESTDIR)$(BPFDIR) \
		$(DESTDIR)$(SYSCONFDIR)/pfsync 2>/dev/null
