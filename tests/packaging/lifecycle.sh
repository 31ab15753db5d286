#!/usr/bin/env bash
# Installs, upgrades, removes and purges the .deb, and installs, upgrades and erases the
# .rpm, each in a throwaway root, running the real maintainer scripts (chrooted by
# dpkg --root / rpm --root) with the host's /usr under a copy-on-write overlay.
# Nothing on the host changes: everything happens in a private mount namespace, and the
# roots live under WORK.
#
#   unshare --mount --propagation private bash lifecycle.sh WORK DEB1 DEB2 RPM1 RPM2
#
# DEB2/RPM2 are the same package with a higher release (the upgrade). Prints one
# "ok - ..." or "FAIL - ..." line per assertion (counted by check.sh).
set -uo pipefail
WORK="$1" DEB1="$2" DEB2="$3" RPM1="$4" RPM2="$5"

ok()   { echo "ok - $*"; }
fail() { echo "FAIL - $*"; }
check() { local d="$1"; shift; if "$@" >/dev/null 2>&1; then ok "$d"; else fail "$d"; fi; }

# A root: /usr is the host's /usr under an overlay (writes land in WORK), merged-usr
# symlinks as on the host, a minimal /etc with only root, /dev/null, /proc.
make_root() {
  local r="$1" d
  mkdir -p "$r"/{usr,etc,var/lib,run,tmp,dev,proc,root} "$r.upper" "$r.work"
  chmod 1777 "$r/tmp"
  mount -t overlay overlay -o "lowerdir=/usr,upperdir=$r.upper,workdir=$r.work" "$r/usr" || return 1
  for d in bin sbin lib lib32 lib64 libx32; do
    if [ -L "/$d" ]; then ln -s "$(readlink "/$d")" "$r/$d"
    elif [ -d "/$d" ]; then
      mkdir -p "$r/$d" "$r.$d.upper" "$r.$d.work"
      mount -t overlay overlay -o "lowerdir=/$d,upperdir=$r.$d.upper,workdir=$r.$d.work" "$r/$d" || return 1
    fi
  done
  touch "$r/dev/null" && mount --bind /dev/null "$r/dev/null" || return 1
  mount -t proc proc "$r/proc" || return 1
  printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n' > "$r/etc/passwd"
  printf 'root:x:0:\nshadow:x:42:\nnogroup:x:65534:\n' > "$r/etc/group"
  printf 'root:*:19000:0:99999:7:::\nnobody:*:19000:0:99999:7:::\n' > "$r/etc/shadow"
  printf 'root:*::\nshadow:*::\nnogroup:*::\n' > "$r/etc/gshadow"
  chmod 0640 "$r/etc/shadow" "$r/etc/gshadow"
  printf 'passwd: files\ngroup: files\nshadow: files\n' > "$r/etc/nsswitch.conf"
  cp /etc/ld.so.cache "$r/etc/" 2>/dev/null || true
  # What adduser/useradd/chfn need to run (PAM configuration; no secrets).
  for d in login.defs adduser.conf deluser.conf pam.conf pam.d security; do
    [ -e "/etc/$d" ] && cp -a "/etc/$d" "$r/etc/"
  done
}

uid_of() { awk -F: -v u="$2" '$1 == u { print $3 }' "$1/etc/passwd"; }
owner_is_evident() { [ "$(stat -c %u "$2")" = "$(uid_of "$1" evident)" ] && [ -n "$(uid_of "$1" evident)" ]; }
mode_is() { [ "$(stat -c %a "$2")" = "$1" ]; }

# ---------------------------------------------------------------- .deb
R="$WORK/debroot"
if ! make_root "$R"; then
  fail "deb lifecycle: could not set up a throwaway root (overlay mounts in a private namespace)"
else
  mkdir -p "$R/var/lib/dpkg/"{info,updates,triggers,alternatives} "$R/var/log"
  touch "$R/var/lib/dpkg/available"
  # The runtime dependencies, registered as installed (their files are the host's /usr).
  arch="$(dpkg --print-architecture)"
  for p in libc6:2.36-9 libgcc-s1:12.2.0-14; do
    printf 'Package: %s\nStatus: install ok installed\nPriority: required\nVersion: %s\nArchitecture: %s\nMulti-Arch: same\nMaintainer: stub <stub@invalid>\nDescription: stub\n\n' \
      "${p%%:*}" "${p#*:}" "$arch"
  done > "$R/var/lib/dpkg/status"
  DPKG=(dpkg --root="$R" --log=/dev/null --force-unsafe-io)

  out="$("${DPKG[@]}" -i "$DEB1" 2>&1)"; rc=$?
  [ $rc -eq 0 ] && ok "deb: dpkg -i into a throwaway root" || { fail "deb: dpkg -i into a throwaway root (rc=$rc)"; echo "$out" | sed 's/^/    /'; }
  check "deb: status is installed" sh -c "dpkg-query --root='$R' -W -f='\${Status}' evident | grep -qx 'install ok installed'"
  check "deb: postinst created the evident system user (nologin)" grep -Eq '^evident:x:[0-9]+:[0-9]+:[^:]*:/var/lib/evident:/usr/sbin/nologin$' "$R/etc/passwd"
  check "deb: evident user is a system user (uid < 1000)" test "$(uid_of "$R" evident)" -lt 1000
  check "deb: evident group exists" grep -q '^evident:' "$R/etc/group"
  check "deb: /var/lib/evident created, owned by evident" owner_is_evident "$R" "$R/var/lib/evident"
  check "deb: /var/lib/evident is mode 0700" mode_is 700 "$R/var/lib/evident"
  check "deb: binary installed and runs" chroot "$R" /usr/bin/evident --version
  check "deb: packaged config validates in the installed root" chroot "$R" /usr/bin/evident config check
  check "deb: unit installed in /lib/systemd/system" test -f "$R/lib/systemd/system/evident.service"
  check "deb: no systemctl start/enable without a running systemd" sh -c "! test -e '$R/etc/systemd/system/multi-user.target.wants/evident.service'"

  # The operator edits the config; the agent has written evidence.
  echo '# local edit' >> "$R/etc/evident/evident.toml"
  mkdir -p "$R/var/lib/evident/evidence/records" && echo '{"evidence":1}' > "$R/var/lib/evident/evidence/records/r.dsse.json"
  echo key > "$R/var/lib/evident/signing.pem"

  out="$("${DPKG[@]}" --force-confold -i "$DEB2" 2>&1)"; rc=$?
  [ $rc -eq 0 ] && ok "deb: upgrade to the next release" || { fail "deb: upgrade (rc=$rc)"; echo "$out" | sed 's/^/    /'; }
  check "deb: upgrade kept the edited config" grep -q '^# local edit$' "$R/etc/evident/evident.toml"
  check "deb: upgrade kept the evidence" test -f "$R/var/lib/evident/evidence/records/r.dsse.json"
  check "deb: one evident user after upgrade" test "$(grep -c '^evident:' "$R/etc/passwd")" = 1

  out="$("${DPKG[@]}" --remove evident 2>&1)"; rc=$?
  [ $rc -eq 0 ] && ok "deb: dpkg --remove" || { fail "deb: dpkg --remove (rc=$rc)"; echo "$out" | sed 's/^/    /'; }
  check "deb: remove took the binary" test ! -e "$R/usr/bin/evident"
  check "deb: remove kept the config (conffile)" test -f "$R/etc/evident/evident.toml"
  check "deb: remove kept the evidence and the key" test -f "$R/var/lib/evident/evidence/records/r.dsse.json" -a -f "$R/var/lib/evident/signing.pem"

  out="$("${DPKG[@]}" --purge evident 2>&1)"; rc=$?
  [ $rc -eq 0 ] && ok "deb: dpkg --purge" || { fail "deb: dpkg --purge (rc=$rc)"; echo "$out" | sed 's/^/    /'; }
  check "deb: purge removed the config" test ! -e "$R/etc/evident/evident.toml"
  check "deb: purge kept /var/lib/evident with the evidence and the key" test -f "$R/var/lib/evident/evidence/records/r.dsse.json" -a -f "$R/var/lib/evident/signing.pem"
  check "deb: purge says the evidence was kept" sh -c "printf '%s' \"\$1\" | grep -q 'purge keeps /var/lib/evident'" _ "$out"
  check "deb: purge left the evident user (it owns the evidence)" grep -q '^evident:' "$R/etc/passwd"
fi

# ---------------------------------------------------------------- .rpm
R="$WORK/rpmroot"
if ! make_root "$R"; then
  fail "rpm lifecycle: could not set up a throwaway root"
else
  RPMQ=(rpm --root="$R" --dbpath=/var/lib/rpm)
  RPM=("${RPMQ[@]}" --nodeps --noplugins)
  "${RPMQ[@]}" --initdb >/dev/null 2>&1
  out="$("${RPM[@]}" -i "$RPM1" 2>&1)"; rc=$?
  [ $rc -eq 0 ] && ok "rpm: rpm -i into a throwaway root" || { fail "rpm: rpm -i (rc=$rc)"; echo "$out" | sed 's/^/    /'; }
  check "rpm: installed" "${RPMQ[@]}" -q evident
  check "rpm: %pre created the evident system user (nologin)" grep -Eq '^evident:x:[0-9]+:[0-9]+:[^:]*:/var/lib/evident:/usr/sbin/nologin$' "$R/etc/passwd"
  check "rpm: /var/lib/evident created, owned by evident" owner_is_evident "$R" "$R/var/lib/evident"
  check "rpm: /var/lib/evident is mode 0700" mode_is 700 "$R/var/lib/evident"
  check "rpm: binary runs" chroot "$R" /usr/bin/evident --version
  check "rpm: unit installed in /usr/lib/systemd/system" test -f "$R/usr/lib/systemd/system/evident.service"

  echo '# local edit' >> "$R/etc/evident/evident.toml"
  mkdir -p "$R/var/lib/evident/evidence" && echo '{"evidence":1}' > "$R/var/lib/evident/evidence/r.dsse.json"
  out="$("${RPM[@]}" -U "$RPM2" 2>&1)"; rc=$?
  [ $rc -eq 0 ] && ok "rpm: upgrade to the next release" || { fail "rpm: upgrade (rc=$rc)"; echo "$out" | sed 's/^/    /'; }
  check "rpm: upgrade kept the edited config (noreplace)" grep -q '^# local edit$' "$R/etc/evident/evident.toml"
  check "rpm: upgrade kept the evidence" test -f "$R/var/lib/evident/evidence/r.dsse.json"

  out="$("${RPM[@]}" -e evident 2>&1)"; rc=$?
  [ $rc -eq 0 ] && ok "rpm: rpm -e" || { fail "rpm: rpm -e (rc=$rc)"; echo "$out" | sed 's/^/    /'; }
  check "rpm: erase took the binary" test ! -e "$R/usr/bin/evident"
  check "rpm: erase saved the edited config as .rpmsave" test -f "$R/etc/evident/evident.toml.rpmsave"
  check "rpm: erase kept the evidence" test -f "$R/var/lib/evident/evidence/r.dsse.json"
  check "rpm: erase says the evidence was kept" sh -c "printf '%s' \"\$1\" | grep -q 'kept /var/lib/evident'" _ "$out"
fi

# ---------------------------------------------------------------- user creation fallbacks
# Without systemd-sysusers the scripts fall back to adduser (deb) or useradd (both).
# Removing a tool from a root's /usr only whites it out in the overlay.
fallback() { # NAME PACKAGE-INSTALL-COMMAND... ; tools to hide in $HIDE
  local name="$1" r="$WORK/$2" t; shift 2
  if ! make_root "$r"; then fail "$name: could not set up a throwaway root"; return; fi
  for t in $HIDE; do rm -f "$r/usr/sbin/$t" "$r/usr/bin/$t"; done
  mkdir -p "$r/var/lib/dpkg/"{info,updates,triggers,alternatives}
  touch "$r/var/lib/dpkg/available" "$r/var/lib/dpkg/status"
  rpm --root="$r" --dbpath=/var/lib/rpm --initdb >/dev/null 2>&1
  out="$("$@" 2>&1)"; rc=$?
  if [ $rc -eq 0 ] && grep -Eq '^evident:x:[0-9]+:[0-9]+:[^:]*:/var/lib/evident:/usr/sbin/nologin$' "$r/etc/passwd" \
     && owner_is_evident "$r" "$r/var/lib/evident" && mode_is 700 "$r/var/lib/evident"; then
    ok "$name"
  else
    fail "$name (rc=$rc)"; echo "$out" | sed 's/^/    /'
  fi
}
HIDE="systemd-sysusers systemd-tmpfiles" fallback "deb: without systemd-sysusers, adduser makes the user" debroot2 \
  dpkg --root="$WORK/debroot2" --log=/dev/null --force-depends -i "$DEB1"
HIDE="systemd-sysusers systemd-tmpfiles adduser" fallback "deb: without sysusers and adduser, useradd makes the user" debroot3 \
  dpkg --root="$WORK/debroot3" --log=/dev/null --force-depends -i "$DEB1"
HIDE="systemd-sysusers systemd-tmpfiles" fallback "rpm: without systemd-sysusers, useradd makes the user" rpmroot2 \
  rpm --root="$WORK/rpmroot2" --dbpath=/var/lib/rpm --nodeps --noplugins -i "$RPM1"
