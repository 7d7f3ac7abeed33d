#!/bin/sh
# Throwaway SSH hosts for the specs: two sshd on 127.0.0.2 and 127.0.0.3,
# with host and user keys made in DIR, and an ssh client config DIR/ssh_config
# that reaches them without prompts.
#   sshd.sh start DIR     start both (prints the port)
#   sshd.sh stop DIR [ADDR]  stop both, or the one on ADDR
set -eu
cmd=$1 dir=$2

stop_one() {
  if [ -f "$dir/sshd-$1.pid" ]; then
    kill "$(cat "$dir/sshd-$1.pid")" 2>/dev/null || true
    rm -f "$dir/sshd-$1.pid"
  fi
}

case $cmd in
start)
  SSHD=$(command -v sshd || echo /usr/sbin/sshd)
  [ -x "$SSHD" ] || { echo "sshd.sh: sshd not found: apt-get install openssh-server" >&2; exit 1; }
  mkdir -p "$dir" /run/sshd
  chmod 700 "$dir"
  ssh-keygen -q -t ed25519 -N '' -f "$dir/host_key"
  ssh-keygen -q -t ed25519 -N '' -f "$dir/user_key"
  cp "$dir/user_key.pub" "$dir/authorized_keys"
  port=$(( 20000 + $$ % 20000 ))
  for try in 1 2 3 4 5 6 7 8 9 10; do
    ok=1
    for addr in 127.0.0.2 127.0.0.3; do
      cat > "$dir/sshd-$addr.conf" <<CONF
ListenAddress $addr:$port
HostKey $dir/host_key
AuthorizedKeysFile $dir/authorized_keys
PidFile $dir/sshd-$addr.pid
PermitRootLogin prohibit-password
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
StrictModes no
MaxStartups 100:30:200
MaxSessions 100
LogLevel ERROR
CONF
      "$SSHD" -f "$dir/sshd-$addr.conf" -E "$dir/sshd-$addr.log" || ok=0
    done
    if [ $ok = 1 ]; then break; fi
    stop_one 127.0.0.2; stop_one 127.0.0.3
    port=$((port + 1))
  done
  [ $ok = 1 ] || { echo "sshd.sh: no free port" >&2; exit 1; }
  cat > "$dir/ssh_config" <<CONF
Host *
  Port $port
  User $(id -un)
  IdentityFile $dir/user_key
  IdentitiesOnly yes
  StrictHostKeyChecking no
  UserKnownHostsFile /dev/null
  LogLevel ERROR
  ConnectTimeout 5
CONF
  echo "$port"
  ;;
stop)
  if [ $# -ge 3 ]; then stop_one "$3"; else stop_one 127.0.0.2; stop_one 127.0.0.3; fi
  ;;
*)
  echo "usage: sshd.sh start|stop DIR [ADDR]" >&2; exit 2
  ;;
esac
