# Sourced (POSIX sh) by ./mvnw, ./aether and .ci/run: exports JAVA_HOME pointing at a JDK 25+.
# Order: $JAVA_HOME if it is 25 or newer, else the newest JDK 25+ under /usr/lib/jvm, else one error line.
aether_java_major() { # $1 = JDK home; prints its feature version or nothing
  [ -x "$1/bin/java" ] || return 0
  _v=$(sed -n 's/^JAVA_VERSION="\([0-9]*\).*/\1/p' "$1/release" 2>/dev/null)
  [ -n "$_v" ] || _v=$("$1/bin/java" -XshowSettings:properties -version 2>&1 | sed -n 's/^ *java.specification.version = \([0-9]*\).*/\1/p')
  echo "$_v"
}
aether_find_jdk() {
  if [ -n "${JAVA_HOME-}" ] && [ "$(aether_java_major "$JAVA_HOME")" -ge 25 ] 2>/dev/null; then return 0; fi
  _best=""; _best_v=0
  # ls, not a glob: mvnw runs with `set -f`.
  for _n in $(ls /usr/lib/jvm 2>/dev/null); do
    _d=/usr/lib/jvm/$_n
    [ -d "$_d" ] || continue
    _v=$(aether_java_major "$_d")
    if [ -n "$_v" ] && [ "$_v" -ge 25 ] 2>/dev/null && [ "$_v" -gt "$_best_v" ]; then _best=$_d; _best_v=$_v; fi
  done
  if [ -n "$_best" ]; then JAVA_HOME=$_best; export JAVA_HOME; return 0; fi
  echo "aether: JDK 25 or newer not found (JAVA_HOME=${JAVA_HOME-unset}, nothing under /usr/lib/jvm); install one, e.g. Temurin 25 (apt-get install temurin-25-jdk), or set JAVA_HOME to it" >&2
  return 1
}
