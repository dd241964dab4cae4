-- SPDX-License-Identifier: BSD-2-Clause
--
-- Wireshark dissector for OpenBSD pfsync protocol version 6 (IP protocol 240),
-- written from pfsync-wire.md §1-§2 of the pfsync-xdp project.
--
--   tshark -X lua_script:tools/wireshark/pfsync.lua -r capture.pcap -V
--   (or copy it into ~/.local/lib/wireshark/plugins/)
--
-- Registered for IP protocol 240 (IPv4 and IPv6). Captures on a pfsync0
-- interface (DLT_PFSYNC) start at the pfsync header: pcap files write that link
-- type as 18 (OpenBSD), 121 (old FreeBSD) or 246 (current libpcap). Wireshark
-- reads 18 as "Linux ATM CLIP" and 121 as "HiPath HDLC", so the dissector also
-- takes those two encapsulations, handing frames that do not start with
-- version 5/6 back to the original dissector (preference "dlt_pfsync").
-- Wireshark versions without a mapping for 246 refuse such files altogether;
-- newer ones with wtap_encaps.PFSYNC get it registered directly.
--
-- Every field of every message is shown; lengths are never trusted: bad
-- versions, lengths and actions are reported as expert info.

local pfsync = Proto("pfsync", "OpenBSD pfsync")

local VERSION = 6
local HDRLEN = 20

local action_names = {
	[0] = "CLR ST", [1] = "INS ST OLD", [2] = "INS ST ACK", [3] = "UPD ST OLD",
	[4] = "UPD ST COMP", [5] = "UPD ST REQ", [6] = "DEL ST", [7] = "DEL ST COMP",
	[8] = "INS FR", [9] = "DEL FR", [10] = "BULK UPD STAT", [11] = "UPD TDB OLD",
	[12] = "EOF", [13] = "INS ST", [14] = "UPD ST", [15] = "UPD TDB",
}
-- our message sizes; nil = no message layout (deprecated / never implemented)
local action_sizes = {
	[0] = 20, [2] = 12, [4] = 84, [5] = 12, [6] = 264, [7] = 12, [10] = 12,
	[13] = 264, [14] = 264, [15] = 52,
}
local timeout_names = {
	[0] = "tcp.first", "tcp.opening", "tcp.established", "tcp.closing", "tcp.finwait",
	"tcp.closed", "udp.first", "udp.single", "udp.multiple", "icmp.first", "icmp.error",
	"other.first", "other.single", "other.multiple", "frag", "interval", "adaptive.start",
	"adaptive.end", "src.track", "tcp.tsdiff",
}
local af_names = { [0] = "same as state", [2] = "inet", [24] = "inet6" }
local direction_names = { [0] = "inout", [1] = "in", [2] = "out", [3] = "fwd" }
local rt_names = { [0] = "none", [1] = "route-to", [2] = "dup-to", [3] = "reply-to" }
local bus_names = { [1] = "start", [2] = "end" }
local peer_state_names = {
	[0] = "CLOSED / NO_TRAFFIC", "LISTEN / SINGLE", "SYN_SENT / MULTIPLE", "SYN_RCVD",
	"ESTABLISHED", "CLOSE_WAIT", "FIN_WAIT_1", "CLOSING", "LAST_ACK", "FIN_WAIT_2",
	"TIME_WAIT", "PROXY_SRC", "PROXY_DST",
}
local proto_names = {
	[1] = "ICMP", [6] = "TCP", [17] = "UDP", [47] = "GRE", [50] = "ESP", [51] = "AH",
	[58] = "ICMPv6", [132] = "SCTP",
}

local F = {}
local function field(name, ctor, label, ...)
	F[name] = ctor("pfsync." .. name, label, ...)
end

-- header and sections
field("version", ProtoField.uint8, "Version")
field("pad", ProtoField.uint8, "Padding")
field("len", ProtoField.uint16, "Length")
field("pfcksum", ProtoField.bytes, "Ruleset checksum")
field("section", ProtoField.none, "Section")
field("action", ProtoField.uint8, "Action", base.DEC, action_names)
field("msglen", ProtoField.uint8, "Message length (words)")
field("count", ProtoField.uint16, "Count")
field("message", ProtoField.none, "Message")
-- id messages (INS_ACK, UPD_REQ, DEL_C) and UPD_C
field("msg.id", ProtoField.uint64, "State ID", base.HEX)
field("msg.creatorid", ProtoField.uint32, "Creator ID", base.HEX)
field("updc.expire", ProtoField.uint32, "Expire (ignored)")
field("updc.timeout", ProtoField.uint8, "Timeout", base.DEC, timeout_names)
field("updc.state_flags", ProtoField.uint8, "State flags", base.HEX)
field("updc.pad", ProtoField.bytes, "Padding")
-- CLR
field("clr.ifname", ProtoField.string, "Interface")
field("clr.creatorid", ProtoField.uint32, "Creator ID", base.HEX)
-- BUS
field("bus.creatorid", ProtoField.uint32, "Creator ID", base.HEX)
field("bus.endtime", ProtoField.uint32, "End time (age, seconds)")
field("bus.status", ProtoField.uint8, "Status", base.DEC, bus_names)
field("bus.pad", ProtoField.bytes, "Padding")
-- TDB
field("tdb.spi", ProtoField.uint32, "SPI", base.HEX)
field("tdb.dst", ProtoField.bytes, "Destination (sockaddr_union)")
field("tdb.dst_len", ProtoField.uint8, "sa_len")
field("tdb.dst_family", ProtoField.uint8, "sa_family", base.DEC, af_names)
field("tdb.dst_addr", ProtoField.string, "Address")
field("tdb.rpl", ProtoField.uint64, "Replay counter")
field("tdb.cur_bytes", ProtoField.uint64, "Current bytes")
field("tdb.sproto", ProtoField.uint8, "Security protocol", base.DEC, proto_names)
field("tdb.updates", ProtoField.uint8, "Updates")
field("tdb.rdomain", ProtoField.uint16, "Routing domain")
-- state keys
field("key", ProtoField.none, "State key")
field("key.addr0", ProtoField.string, "Address 0")
field("key.addr1", ProtoField.string, "Address 1")
field("key.port0", ProtoField.uint16, "Port 0")
field("key.port1", ProtoField.uint16, "Port 1")
field("key.rdomain", ProtoField.uint16, "Routing domain")
field("key.af", ProtoField.uint8, "Address family", base.DEC, af_names)
field("key.pad", ProtoField.uint8, "Padding")
-- peers
field("peer", ProtoField.none, "Peer")
field("peer.pfss_flags", ProtoField.uint16, "Scrub flags", base.HEX)
field("peer.pfss_ttl", ProtoField.uint8, "Scrub TTL")
field("peer.scrub_flag", ProtoField.uint8, "Scrub valid", base.HEX)
field("peer.pfss_ts_mod", ProtoField.uint32, "Timestamp modulator")
field("peer.seqlo", ProtoField.uint32, "seqlo")
field("peer.seqhi", ProtoField.uint32, "seqhi")
field("peer.seqdiff", ProtoField.uint32, "seqdiff")
field("peer.max_win", ProtoField.uint16, "Max window")
field("peer.mss", ProtoField.uint16, "MSS")
field("peer.state", ProtoField.uint8, "State", base.DEC, peer_state_names)
field("peer.wscale", ProtoField.uint8, "Window scale", base.HEX)
field("peer.pad", ProtoField.bytes, "Padding")
-- full state (INS, UPD, DEL)
field("state.id", ProtoField.uint64, "State ID", base.HEX)
field("state.ifname", ProtoField.string, "Interface")
field("state.rt_addr", ProtoField.string, "Route address")
field("state.rule", ProtoField.uint32, "Rule")
field("state.anchor", ProtoField.uint32, "Anchor")
field("state.nat_rule", ProtoField.uint32, "NAT rule")
field("state.creation", ProtoField.uint32, "Age (seconds)")
field("state.expire", ProtoField.uint32, "Expires in (seconds)")
field("state.packets0", ProtoField.uint64, "Packets (state direction)")
field("state.packets1", ProtoField.uint64, "Packets (reverse)")
field("state.bytes0", ProtoField.uint64, "Bytes (state direction)")
field("state.bytes1", ProtoField.uint64, "Bytes (reverse)")
field("state.creatorid", ProtoField.uint32, "Creator ID", base.HEX)
field("state.rtableid0", ProtoField.int32, "Routing table (wire)")
field("state.rtableid1", ProtoField.int32, "Routing table (stack)")
field("state.max_mss", ProtoField.uint16, "Max MSS")
field("state.af", ProtoField.uint8, "Address family", base.DEC, af_names)
field("state.proto", ProtoField.uint8, "Protocol", base.DEC, proto_names)
field("state.direction", ProtoField.uint8, "Direction", base.DEC, direction_names)
field("state.log", ProtoField.uint8, "Log", base.HEX)
field("state.rt", ProtoField.uint8, "Route type", base.DEC, rt_names)
field("state.timeout", ProtoField.uint8, "Timeout", base.DEC, timeout_names)
field("state.sync_flags", ProtoField.uint8, "Sync flags", base.HEX)
field("state.updates", ProtoField.uint8, "Updates")
field("state.min_ttl", ProtoField.uint8, "Min TTL")
field("state.set_tos", ProtoField.uint8, "Set TOS", base.HEX)
field("state.state_flags", ProtoField.uint16, "State flags", base.HEX)
field("state.set_prio0", ProtoField.uint8, "Priority")
field("state.set_prio1", ProtoField.uint8, "Priority (ACK / low delay)")
-- anything we cannot interpret
field("skipped", ProtoField.bytes, "Skipped data")
field("trailing", ProtoField.bytes, "Bytes after the header length")

local fields = {}
for _, f in pairs(F) do
	fields[#fields + 1] = f
end
pfsync.fields = fields

local E = {
	bad_version = ProtoExpert.new("pfsync.bad_version", "Unsupported pfsync version",
		expert.group.UNDECODED, expert.severity.WARN),
	bad_len = ProtoExpert.new("pfsync.bad_len", "Bad length",
		expert.group.MALFORMED, expert.severity.ERROR),
	bad_action = ProtoExpert.new("pfsync.bad_action", "Unknown action",
		expert.group.MALFORMED, expert.severity.ERROR),
	skipped = ProtoExpert.new("pfsync.skipped", "Action without a message layout skipped",
		expert.group.UNDECODED, expert.severity.NOTE),
	short_msg = ProtoExpert.new("pfsync.short_msg", "Message length smaller than expected",
		expert.group.MALFORMED, expert.severity.WARN),
}
pfsync.experts = { E.bad_version, E.bad_len, E.bad_action, E.skipped, E.short_msg }

local pref_dlt = true
pfsync.prefs.dlt_pfsync = Pref.bool("Decode link types 18 and 121 as DLT_PFSYNC", true,
	"pcap link types 18 and 121 mean DLT_PFSYNC on the BSDs; Wireshark reads them as "
	.. "Linux ATM CLIP and HiPath HDLC. Frames not starting with a pfsync version go to "
	.. "those dissectors.")
function pfsync.prefs_changed()
	pref_dlt = pfsync.prefs.dlt_pfsync
end

-- ---- field helpers ---------------------------------------------------------------

local function addr_string(range, af)
	if af == 2 then
		return tostring(range(0, 4):ipv4())
	elseif af == 24 then
		return tostring(range:ipv6())
	end
	return tostring(range:bytes())
end

local function c_string(range)
	return range:stringz()
end

local function add_peer(tree, tvb, off, label)
	local t = tree:add(F["peer"], tvb(off, 32)):set_text(label)
	t:add(F["peer.pfss_flags"], tvb(off, 2))
	t:add(F["peer.pfss_ttl"], tvb(off + 2, 1))
	t:add(F["peer.scrub_flag"], tvb(off + 3, 1))
	t:add(F["peer.pfss_ts_mod"], tvb(off + 4, 4))
	t:add(F["peer.seqlo"], tvb(off + 8, 4))
	t:add(F["peer.seqhi"], tvb(off + 12, 4))
	t:add(F["peer.seqdiff"], tvb(off + 16, 4))
	t:add(F["peer.max_win"], tvb(off + 20, 2))
	t:add(F["peer.mss"], tvb(off + 22, 2))
	t:add(F["peer.state"], tvb(off + 24, 1))
	t:add(F["peer.wscale"], tvb(off + 25, 1))
	t:add(F["peer.pad"], tvb(off + 26, 6))
end

local function add_key(tree, tvb, off, label, state_af)
	local af = tvb(off + 38, 1):uint()
	local shown_af = af ~= 0 and af or state_af
	local a0 = addr_string(tvb(off, 16), shown_af)
	local a1 = addr_string(tvb(off + 16, 16), shown_af)
	local t = tree:add(F["key"], tvb(off, 40))
	t:set_text(string.format("%s: %s port %d, %s port %d", label, a0, tvb(off + 32, 2):uint(),
		a1, tvb(off + 34, 2):uint()))
	t:add(F["key.addr0"], tvb(off, 16), a0)
	t:add(F["key.addr1"], tvb(off + 16, 16), a1)
	t:add(F["key.port0"], tvb(off + 32, 2))
	t:add(F["key.port1"], tvb(off + 34, 2))
	t:add(F["key.rdomain"], tvb(off + 36, 2))
	t:add(F["key.af"], tvb(off + 38, 1))
	t:add(F["key.pad"], tvb(off + 39, 1))
end

-- ---- messages --------------------------------------------------------------------

local function msg_id(tree, tvb, off)
	tree:add(F["msg.id"], tvb(off, 8))
	tree:add(F["msg.creatorid"], tvb(off + 8, 4))
	tree:append_text(string.format(": id %s creatorid %08x", tvb(off, 8):bytes():tohex():lower(),
		tvb(off + 8, 4):uint()))
end

local function msg_clr(tree, tvb, off)
	local ifname = c_string(tvb(off, 16))
	tree:add(F["clr.ifname"], tvb(off, 16), ifname)
	tree:add(F["clr.creatorid"], tvb(off + 16, 4))
	tree:append_text(string.format(": creatorid %08x interface %s", tvb(off + 16, 4):uint(),
		ifname ~= "" and ifname or "(all)"))
end

local function msg_upd_c(tree, tvb, off)
	tree:add(F["msg.id"], tvb(off, 8))
	add_peer(tree, tvb, off + 8, "Source peer")
	add_peer(tree, tvb, off + 40, "Destination peer")
	tree:add(F["msg.creatorid"], tvb(off + 72, 4))
	tree:add(F["updc.expire"], tvb(off + 76, 4))
	tree:add(F["updc.timeout"], tvb(off + 80, 1))
	tree:add(F["updc.state_flags"], tvb(off + 81, 1))
	tree:add(F["updc.pad"], tvb(off + 82, 2))
	tree:append_text(string.format(": id %s creatorid %08x", tvb(off, 8):bytes():tohex():lower(),
		tvb(off + 72, 4):uint()))
end

local function msg_bus(tree, tvb, off)
	tree:add(F["bus.creatorid"], tvb(off, 4))
	tree:add(F["bus.endtime"], tvb(off + 4, 4))
	tree:add(F["bus.status"], tvb(off + 8, 1))
	tree:add(F["bus.pad"], tvb(off + 9, 3))
	tree:append_text(string.format(": creatorid %08x status %s", tvb(off, 4):uint(),
		bus_names[tvb(off + 8, 1):uint()] or "UNKNOWN"))
end

local function msg_tdb(tree, tvb, off)
	tree:add(F["tdb.spi"], tvb(off, 4))
	local d = tree:add(F["tdb.dst"], tvb(off + 4, 28))
	local family = tvb(off + 5, 1):uint()
	d:add(F["tdb.dst_len"], tvb(off + 4, 1))
	d:add(F["tdb.dst_family"], tvb(off + 5, 1))
	if family == 2 then
		d:add(F["tdb.dst_addr"], tvb(off + 8, 4), tostring(tvb(off + 8, 4):ipv4()))
	elseif family == 24 then
		d:add(F["tdb.dst_addr"], tvb(off + 12, 16), tostring(tvb(off + 12, 16):ipv6()))
	end
	tree:add(F["tdb.rpl"], tvb(off + 32, 8))
	tree:add(F["tdb.cur_bytes"], tvb(off + 40, 8))
	tree:add(F["tdb.sproto"], tvb(off + 48, 1))
	tree:add(F["tdb.updates"], tvb(off + 49, 1))
	tree:add(F["tdb.rdomain"], tvb(off + 50, 2))
	tree:append_text(string.format(": spi 0x%08x", tvb(off, 4):uint()))
end

local function msg_state(tree, tvb, off)
	local af = tvb(off + 250, 1):uint()
	local proto = tvb(off + 251, 1):uint()
	local ifname = c_string(tvb(off + 8, 16))
	tree:add(F["state.id"], tvb(off, 8))
	tree:add(F["state.ifname"], tvb(off + 8, 16), ifname)
	add_key(tree, tvb, off + 24, "Wire key", af)
	add_key(tree, tvb, off + 64, "Stack key", af)
	add_peer(tree, tvb, off + 104, "Source peer (initiator)")
	add_peer(tree, tvb, off + 136, "Destination peer (responder)")
	tree:add(F["state.rt_addr"], tvb(off + 168, 16), addr_string(tvb(off + 168, 16), af))
	tree:add(F["state.rule"], tvb(off + 184, 4))
	tree:add(F["state.anchor"], tvb(off + 188, 4))
	tree:add(F["state.nat_rule"], tvb(off + 192, 4))
	tree:add(F["state.creation"], tvb(off + 196, 4))
	tree:add(F["state.expire"], tvb(off + 200, 4))
	tree:add(F["state.packets0"], tvb(off + 204, 8))
	tree:add(F["state.packets1"], tvb(off + 212, 8))
	tree:add(F["state.bytes0"], tvb(off + 220, 8))
	tree:add(F["state.bytes1"], tvb(off + 228, 8))
	tree:add(F["state.creatorid"], tvb(off + 236, 4))
	tree:add(F["state.rtableid0"], tvb(off + 240, 4))
	tree:add(F["state.rtableid1"], tvb(off + 244, 4))
	tree:add(F["state.max_mss"], tvb(off + 248, 2))
	tree:add(F["state.af"], tvb(off + 250, 1))
	tree:add(F["state.proto"], tvb(off + 251, 1))
	tree:add(F["state.direction"], tvb(off + 252, 1))
	tree:add(F["state.log"], tvb(off + 253, 1))
	tree:add(F["state.rt"], tvb(off + 254, 1))
	tree:add(F["state.timeout"], tvb(off + 255, 1))
	tree:add(F["state.sync_flags"], tvb(off + 256, 1))
	tree:add(F["state.updates"], tvb(off + 257, 1))
	tree:add(F["state.min_ttl"], tvb(off + 258, 1))
	tree:add(F["state.set_tos"], tvb(off + 259, 1))
	tree:add(F["state.state_flags"], tvb(off + 260, 2))
	tree:add(F["state.set_prio0"], tvb(off + 262, 1))
	tree:add(F["state.set_prio1"], tvb(off + 263, 1))
	tree:append_text(string.format(": id %s creatorid %08x %s %s", tvb(off, 8):bytes():tohex():lower(),
		tvb(off + 236, 4):uint(), ifname, proto_names[proto] or tostring(proto)))
end

local printers = {
	[0] = msg_clr, [2] = msg_id, [4] = msg_upd_c, [5] = msg_id, [6] = msg_state,
	[7] = msg_id, [10] = msg_bus, [13] = msg_state, [14] = msg_state, [15] = msg_tdb,
}

-- ---- packet ----------------------------------------------------------------------

-- one section at off (subheader included); returns the next offset or nil to stop
local function dissect_section(tvb, tree, off, stop, summary)
	local action = tvb(off, 1):uint()
	local words = tvb(off + 1, 1):uint()
	local count = tvb(off + 2, 2):uint()
	local mlen = words * 4
	local ours = action_sizes[action]
	local s = tree:add(F["section"], tvb(off, 4))
	s:set_text(string.format("Section %s, count %d", action_names[action] or
		("UNKNOWN " .. action), count))
	s:add(F["action"], tvb(off, 1))
	s:add(F["msglen"], tvb(off + 1, 1))
	s:add(F["count"], tvb(off + 2, 2))
	off = off + 4
	summary[#summary + 1] = string.format("%s(%d)", action_names[action] or tostring(action),
		count)

	if action >= 16 or ours == nil or mlen < ours then
		-- the receiver skips these when it can tell how far, else it gives up (badact)
		if count == 0 or mlen == 0 then
			if action >= 16 then
				s:add_proto_expert_info(E.bad_action, "Unknown action " .. action)
			else
				s:add_proto_expert_info(E.short_msg, string.format(
					"Action %d with message length %d cannot be skipped", action, mlen))
			end
			return nil
		end
		if action >= 16 then
			s:add_proto_expert_info(E.bad_action, "Unknown action " .. action .. " skipped")
		elseif ours == nil then
			s:add_proto_expert_info(E.skipped)
		else
			s:add_proto_expert_info(E.short_msg, string.format(
				"Message length %d smaller than %d, section skipped", mlen, ours))
		end
		local total = mlen * count
		if off + total > stop then
			s:add_proto_expert_info(E.bad_len, string.format(
				"Skipped section runs past the end of the pfsync data (%d bytes)", stop))
			return nil
		end
		s:add(F["skipped"], tvb(off, total))
		s:set_len(4 + total)
		return off + total
	end

	for i = 1, count do
		if off + mlen > stop then
			s:add_proto_expert_info(E.bad_len, string.format(
				"Message %d of %d runs past the end of the pfsync data (%d bytes)", i,
				count, stop))
			return nil
		end
		local m = s:add(F["message"], tvb(off, mlen))
		m:set_text(action_names[action])
		printers[action](m, tvb, off)
		off = off + mlen
	end
	s:set_len(4 + mlen * count)
	return off
end

function pfsync.dissector(tvb, pinfo, tree)
	local caplen = tvb:len()
	pinfo.cols.protocol = "PFSYNC"
	local root = tree:add(pfsync, tvb())
	if caplen < HDRLEN then
		root:add_proto_expert_info(E.bad_len, string.format(
			"%d bytes, shorter than the %d-byte header", caplen, HDRLEN))
		pinfo.cols.info = "[|pfsync]"
		return caplen
	end
	local version = tvb(0, 1):uint()
	local len = tvb(2, 2):uint()
	root:add(F["version"], tvb(0, 1))
	root:add(F["pad"], tvb(1, 1))
	root:add(F["len"], tvb(2, 2))
	root:add(F["pfcksum"], tvb(4, 16))
	pinfo.cols.info = string.format("PFSYNCv%d len %d", version, len)
	root:append_text(string.format(", version %d, len %d", version, len))
	if version ~= VERSION then
		root:add_proto_expert_info(E.bad_version, "Unsupported pfsync version " .. version)
		return caplen
	end
	local stop = len
	if len > caplen then
		root:add_proto_expert_info(E.bad_len, string.format(
			"Header length %d runs past the captured data (%d bytes)", len, caplen))
		stop = caplen
	elseif len < HDRLEN then
		root:add_proto_expert_info(E.bad_len, "Header length " .. len .. " below 20")
		return caplen
	end

	local summary = {}
	local off = HDRLEN
	while off + 4 <= stop do
		off = dissect_section(tvb, root, off, stop, summary)
		if off == nil then
			break
		end
	end
	if off ~= nil and off < stop then
		root:add_proto_expert_info(E.bad_len, string.format(
			"%d bytes left over, too few for a subheader", stop - off))
	end
	if len < caplen then
		root:add(F["trailing"], tvb(len, caplen - len))
		root:add_proto_expert_info(E.bad_len, string.format(
			"%d bytes after the header length", caplen - len))
	end
	if #summary > 0 then
		pinfo.cols.info:append(" " .. table.concat(summary, " "))
	end
	return caplen
end

-- ---- registration ------------------------------------------------------------------

DissectorTable.get("ip.proto"):add(240, pfsync)

local encaps = wtap_encaps or wtap
local wtap_table = DissectorTable.get("wtap_encap")
if encaps and encaps.PFSYNC then
	wtap_table:add(encaps.PFSYNC, pfsync)
end

-- link types 18 / 121 under the encapsulation Wireshark gives them
local function take_over(encap)
	if not encaps or not encaps[encap] then
		return
	end
	local ok, original = pcall(function()
		return wtap_table:get_dissector(encaps[encap])
	end)
	if not ok then
		original = nil
	end
	local wrapper = Proto("pfsync_dlt_" .. string.lower(encap),
		"DLT_PFSYNC (as " .. encap .. ")")
	function wrapper.dissector(tvb, pinfo, tree)
		local v = tvb:len() > 0 and tvb(0, 1):uint() or -1
		if pref_dlt and (v == VERSION or v == 5) then
			return pfsync.dissector(tvb, pinfo, tree)
		end
		if original then
			return original:call(tvb, pinfo, tree)
		end
		return 0
	end
	wtap_table:add(encaps[encap], wrapper)
end
take_over("LINUX_ATM_CLIP")
take_over("HHDLC")
