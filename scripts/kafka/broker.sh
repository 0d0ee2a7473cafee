#!/usr/bin/env bash
# A single-node Apache Kafka broker (KRaft) on 127.0.0.1 for tapedeck's tests and benchmarks,
# assembled from Maven Central. No Docker, no download from outside Maven Central.
#
#   scripts/kafka/broker.sh start     fetch the jars (once), format storage (once), start, wait until ready
#   scripts/kafka/broker.sh stop      stop the broker started here
#   scripts/kafka/broker.sh status    exit 0 when it is running and answering
#   scripts/kafka/broker.sh restart   stop, then start (the data is kept)
#   scripts/kafka/broker.sh reset     stop and delete its data (the jars are kept)
#
# Every command is safe to run twice. Settings (environment):
#   TAPEDECK_KAFKA_DIR   where jars, data, logs live (default: <repo>/.kafka, git-ignored)
#   TAPEDECK_KAFKA_PORT  the client port (default 19092; the controller uses port + 1)
#   TAPEDECK_KAFKA_HEAP  JVM heap (default 1g)
#   TAPEDECK_KAFKA_LIBS  where the jars are (default: $TAPEDECK_KAFKA_DIR/libs; a second broker can share them)
# A SASL_SSL listener beside the PLAINTEXT one (the security tests start such a broker):
#   TAPEDECK_KAFKA_SASL_SSL_PORT   its port
#   TAPEDECK_KAFKA_TLS_KEYSTORE    a PEM file with the broker's private key (PKCS#8, unencrypted) and certificate chain
#   TAPEDECK_KAFKA_PLAIN_USER      a user for SASL/PLAIN, with its password in TAPEDECK_KAFKA_PLAIN_PASSWORD
#   SCRAM-SHA-256 and -512 are enabled; add users with Kafka's own tool from the same jars:
#   TAPEDECK_KAFKA_SCRAM_PASSWORD=... scripts/kafka/broker.sh add-scram-user NAME
# Tests find the broker at 127.0.0.1:$TAPEDECK_KAFKA_PORT (TAPEDECK_KAFKA_BROKERS overrides).
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
dir="${TAPEDECK_KAFKA_DIR:-$repo/.kafka}"
port="${TAPEDECK_KAFKA_PORT:-19092}"
controller_port=$((port + 1))
heap="${TAPEDECK_KAFKA_HEAP:-1g}"
libs="${TAPEDECK_KAFKA_LIBS:-$dir/libs}"
data="$dir/data"
pidfile="$dir/broker.pid"
log="$dir/broker.log"
KAFKA_VERSION=3.9.1

say() { printf 'kafka: %s\n' "$*" >&2; }

running() {
  [ -f "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null
}

port_open() {
  (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

fetch_jars() {
  if [ -f "$libs/.complete-$KAFKA_VERSION" ]; then return; fi
  command -v mvn >/dev/null || { say "mvn not found: install Maven (Debian: apt-get install maven)"; exit 1; }
  command -v java >/dev/null || { say "java not found: install a JDK 17 (Debian: apt-get install openjdk-17-jre-headless)"; exit 1; }
  say "fetching Apache Kafka $KAFKA_VERSION jars from Maven Central into $libs"
  rm -rf "$libs"
  mkdir -p "$libs"
  mvn -q -B -f "$here/pom.xml" dependency:copy-dependencies -DincludeScope=runtime -DoutputDirectory="$libs"
  touch "$libs/.complete-$KAFKA_VERSION"
}

write_config() {
  mkdir -p "$data"
  local listeners="PLAINTEXT://127.0.0.1:$port,CONTROLLER://127.0.0.1:$controller_port"
  local advertised="PLAINTEXT://127.0.0.1:$port"
  local protocols="PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT"
  if [ -n "${TAPEDECK_KAFKA_SASL_SSL_PORT:-}" ]; then
    listeners="$listeners,SASL_SSL://127.0.0.1:$TAPEDECK_KAFKA_SASL_SSL_PORT"
    advertised="$advertised,SASL_SSL://127.0.0.1:$TAPEDECK_KAFKA_SASL_SSL_PORT"
    protocols="$protocols,SASL_SSL:SASL_SSL"
  fi
  cat >"$dir/server.properties" <<EOF
# Written by scripts/kafka/broker.sh: a single-node KRaft broker for tests, on loopback only.
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:$controller_port
listeners=$listeners
advertised.listeners=$advertised
controller.listener.names=CONTROLLER
listener.security.protocol.map=$protocols
inter.broker.listener.name=PLAINTEXT
log.dirs=$data
num.partitions=1
default.replication.factor=1
offsets.topic.replication.factor=1
offsets.topic.num.partitions=8
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
group.initial.rebalance.delay.ms=0
auto.create.topics.enable=false
delete.topic.enable=true
log.retention.hours=-1
log.retention.bytes=-1
log.segment.bytes=268435456
message.max.bytes=10485760
EOF
  if [ -n "${TAPEDECK_KAFKA_SASL_SSL_PORT:-}" ]; then
    local plain=""
    if [ -n "${TAPEDECK_KAFKA_PLAIN_USER:-}" ]; then
      plain=" user_${TAPEDECK_KAFKA_PLAIN_USER}=\"${TAPEDECK_KAFKA_PLAIN_PASSWORD:-}\""
    fi
    cat >>"$dir/server.properties" <<EOF
sasl.enabled.mechanisms=PLAIN,SCRAM-SHA-256,SCRAM-SHA-512
listener.name.sasl_ssl.plain.sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required$plain;
listener.name.sasl_ssl.scram-sha-256.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;
listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;
listener.name.sasl_ssl.ssl.keystore.type=PEM
listener.name.sasl_ssl.ssl.keystore.location=${TAPEDECK_KAFKA_TLS_KEYSTORE:?TAPEDECK_KAFKA_TLS_KEYSTORE must name the PEM key and certificate}
EOF
    chmod 600 "$dir/server.properties"
  fi
  cat >"$dir/log4j.properties" <<EOF
log4j.rootLogger=WARN, file
log4j.appender.file=org.apache.log4j.FileAppender
log4j.appender.file.File=$dir/server.log
log4j.appender.file.layout=org.apache.log4j.PatternLayout
log4j.appender.file.layout.ConversionPattern=[%d] %p %m (%c)%n
log4j.logger.kafka.server.KafkaServer=INFO
log4j.logger.kafka.server.BrokerServer=INFO
EOF
}

java_run() {
  java "-Xmx$heap" "-Xms$heap" -XX:+UseG1GC -Djava.awt.headless=true \
    "-Dlog4j.configuration=file:$dir/log4j.properties" -cp "$libs/*" "$@"
}

format_storage() {
  if [ -f "$data/meta.properties" ]; then return; fi
  local id
  id="$(java_run kafka.tools.StorageTool random-uuid)"
  say "formatting KRaft storage in $data (cluster $id)"
  java_run kafka.tools.StorageTool format -t "$id" -c "$dir/server.properties" >/dev/null
}

wait_ready() {
  local deadline=$((SECONDS + ${1:-90}))
  while [ $SECONDS -lt $deadline ]; do
    if ! running; then
      say "the broker exited during start-up; the end of $log:"
      tail -n 30 "$log" >&2 || true
      tail -n 30 "$dir/server.log" >&2 || true
      return 1
    fi
    if port_open "$port" && grep -q 'Kafka Server started\|BrokerServer.*Transition from STARTING to STARTED\|\[BrokerServer id=1\] Transition from STARTING to STARTED' "$dir/server.log" 2>/dev/null; then
      return 0
    fi
    sleep 0.5
  done
  say "the broker did not become ready within ${1:-90} s; see $log and $dir/server.log"
  return 1
}

start() {
  mkdir -p "$dir"
  if running && port_open "$port"; then
    say "already running on 127.0.0.1:$port (pid $(cat "$pidfile"))"
    return 0
  fi
  if port_open "$port"; then
    say "port $port on 127.0.0.1 is taken by another process; set TAPEDECK_KAFKA_PORT to another port"
    exit 1
  fi
  fetch_jars
  write_config
  format_storage
  : >"$dir/server.log"
  say "starting the broker on 127.0.0.1:$port"
  nohup java "-Xmx$heap" "-Xms$heap" -XX:+UseG1GC -Djava.awt.headless=true \
    "-Dlog4j.configuration=file:$dir/log4j.properties" -cp "$libs/*" \
    kafka.Kafka "$dir/server.properties" >"$log" 2>&1 &
  echo $! >"$pidfile"
  if wait_ready 120; then
    say "ready on 127.0.0.1:$port (pid $(cat "$pidfile"))"
  else
    stop
    exit 1
  fi
}

stop() {
  if ! running; then
    rm -f "$pidfile"
    say "not running"
    return 0
  fi
  local pid
  pid="$(cat "$pidfile")"
  say "stopping the broker (pid $pid)"
  kill "$pid" 2>/dev/null || true
  for _ in $(seq 1 60); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.5
  done
  if kill -0 "$pid" 2>/dev/null; then
    say "the broker did not stop within 30 s; killing it"
    kill -9 "$pid" 2>/dev/null || true
  fi
  rm -f "$pidfile"
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  restart) stop; start ;;
  status)
    if running && port_open "$port"; then
      echo "running on 127.0.0.1:$port (pid $(cat "$pidfile"))"
    else
      echo "not running"
      exit 1
    fi
    ;;
  reset) stop; rm -rf "$data" "$dir/server.log" "$log"; say "data deleted" ;;
  add-scram-user)
    user="${2:?usage: TAPEDECK_KAFKA_SCRAM_PASSWORD=... broker.sh add-scram-user NAME}"
    pw="${TAPEDECK_KAFKA_SCRAM_PASSWORD:?set TAPEDECK_KAFKA_SCRAM_PASSWORD (kept off the command line of this script)}"
    # Kafka's ConfigCommand, from the same jars, through the PLAINTEXT listener.
    # One mechanism per request (the broker refuses two changes of a user in one), and the
    # tool's own output to a file: on errors it repeats its arguments, the password among them.
    for mechanism in SCRAM-SHA-256 SCRAM-SHA-512; do
      if ! java_run kafka.admin.ConfigCommand --bootstrap-server "127.0.0.1:$port" --alter \
        --add-config "$mechanism=[password=$pw]" --entity-type users --entity-name "$user" >"$dir/config-command.log" 2>&1; then
        say "ConfigCommand failed for $user ($mechanism); see $dir/config-command.log"
        exit 1
      fi
    done
    say "SCRAM-SHA-256 and SCRAM-SHA-512 credentials set for $user"
    ;;
  *)
    sed -n '2,23p' "$0" | sed 's/^# \{0,1\}//'
    exit 2
    ;;
esac
