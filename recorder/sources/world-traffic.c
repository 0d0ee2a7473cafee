// The `world` traffic generator (engine/world/traffic.ts) and the block packing of its events
// (tape/block.ts, BlockBuilder.addRun with the world codec), compiled to WebAssembly: the
// recorder's source worker makes a synthetic recording's blocks with it, a block a call
// (world-traffic-packer.ts). In JavaScript, generating and packing took the worker about 260 ns
// an event; here about 80.
//
// It must make exactly the blocks the JavaScript makes, draw for draw and byte for byte
// (test/recorder/world-traffic-packer.test.ts holds the two together), so it follows
// traffic.ts function for function: read that file for what the traffic is. No C library: the
// logarithm is the host's Math.log, imported, so the gaps between arrivals are the same
// doubles as in JavaScript; the rest is integer arithmetic and IEEE-754 double operations,
// which WebAssembly defines exactly. Built by scripts/build-wasm.sh into world-traffic-wasm.ts.
//
// One generator an instance: the host makes an instance for each.

typedef unsigned char u8;
typedef int i32;
typedef unsigned int u32;
typedef long long i64;
typedef unsigned long long u64;

__attribute__((import_module("env"), import_name("log"))) double host_log(double x);

extern unsigned char __heap_base;

// ---- memory: a bump allocator over the instance's memory, grown as needed ----

static unsigned long heap_top;

static void *allocate(unsigned long bytes) {
  if (heap_top == 0) heap_top = (unsigned long)&__heap_base;
  unsigned long at = (heap_top + 15) & ~15ul;
  unsigned long end = at + bytes;
  unsigned long have = __builtin_wasm_memory_size(0) * 65536ul;
  if (end > have) {
    unsigned long pages = (end - have + 65535) / 65536;
    if (__builtin_wasm_memory_grow(0, pages) == (unsigned long)-1) return 0;
  }
  heap_top = end;
  return (void *)at;
}

static void fill_i32(i32 *to, i32 value, i32 n) {
  for (i32 i = 0; i < n; i++) to[i] = value;
}

// ---- pure-rand's xoroshiro128+ (the low 32 bits of each sum), uniformInt, uniformFloat64 ----

static u64 s0, s1;

static inline u64 rotl(u64 x, int k) {
  return (x << k) | (x >> (64 - k));
}

/** pure-rand's next() as an unsigned 32-bit value. */
static inline u32 next_u32(void) {
  u64 a = s0;
  u64 b = s1;
  u32 out = (u32)(a + b);
  b ^= a;
  s0 = rotl(a, 24) ^ b ^ (b << 16);
  s1 = rotl(b, 37);
  return out;
}

/** SeededRandom.int for int32 bounds with min <= max (every draw made here). */
static inline i32 rand_int(i32 min, i32 max) {
  u64 range = (u64)((i64)max - (i64)min + 1);
  u64 draw = next_u32() ^ 0x80000000u;
  if (draw >= 4294967296ull - range) {
    u64 allowed = range > 2 ? (4294967296ull / range) * range : 4294967296ull;
    while (draw >= allowed) draw = next_u32() ^ 0x80000000u;
  }
  return (i32)(i64)(draw % range + (i64)min);
}

/** SeededRandom.float: pure-rand's uniformFloat64. */
static inline double rand_float(void) {
  u32 value1 = next_u32() & 0x3ffffffu;
  u32 value2 = next_u32() & 0x7ffffffu;
  return (double)value1 * 0x1p-26 + (double)value2 * 0x1p-53;
}

// ---- IdBag ----

typedef struct {
  i32 *ids;
  i32 size;
  i32 capacity;
  i32 *slot;
} Bag;

static int bag_init(Bag *bag, i32 *slot, i32 capacity) {
  bag->slot = slot;
  bag->size = 0;
  bag->capacity = capacity;
  bag->ids = capacity > 0 ? allocate((unsigned long)capacity * 4) : 0;
  return capacity == 0 || bag->ids != 0;
}

static int out_of_memory;

static void bag_add(Bag *bag, i32 id) {
  if (bag->size == bag->capacity) {
    i32 capacity = bag->capacity < 8 ? 16 : bag->capacity * 2;
    i32 *ids = allocate((unsigned long)capacity * 4);
    if (ids == 0) {
      out_of_memory = 1;
      return;
    }
    for (i32 i = 0; i < bag->size; i++) ids[i] = bag->ids[i];
    bag->ids = ids;
    bag->capacity = capacity;
  }
  bag->slot[id] = bag->size;
  bag->ids[bag->size++] = id;
}

static void bag_remove(Bag *bag, i32 id) {
  i32 i = bag->slot[id];
  if (i == -1 || i >= bag->size || bag->ids[i] != id) return;
  i32 last = bag->ids[--bag->size];
  if (last != id) {
    bag->ids[i] = last;
    bag->slot[last] = i;
  }
  bag->slot[id] = -1;
}

static inline i32 bag_pick(Bag *bag) {
  return bag->ids[rand_int(0, bag->size - 1)];
}

// ---- the generator (WorldTraffic) ----

enum { JOIN = 0, LEAVE = 1, MOVE = 2, ROTATE = 3, SHOOT = 4, LOOT = 5, SPAWN = 6 };
enum { PROFILE_STEADY = 0, PROFILE_RAMP = 1, PROFILE_BURST = 2, PROFILE_HOT = 3 };
#define TREASURE_ID_POOL 65536

static double o_events, o_rate, o_start_us;
static i32 o_partitions, o_players, o_zones, o_arena, o_step;
static int ramp, burst;

static i64 index_next;
static double elapsed_us;
static i32 event_zone;
static i32 *next_treasure;
static i32 *player_zone;
static Bag online, offline;
static Bag *zone_players, *zone_treasures;
static double *zone_weights;
static i32 *treasure_zone;
static u8 kind_of_roll[1000];

/** The event advance() made: WorldTraffic.current and the fields beside it. */
static i32 e_kind, e_id, e_other, e_zone, e_x, e_y, e_amount;
static double e_ts;
static i32 e_partition;

/** x mod 1e6 for a finite x >= 0, exactly (as JavaScript's %). */
static double mod_million(double x) {
  double whole = __builtin_floor(x);
  return (double)((i64)whole % 1000000) + (x - whole);
}

static double gap_us(i64 index) {
  double rate = o_rate;
  if (ramp) {
    double span = o_events - 1;
    rate *= 0.25 + (1.5 * (double)index) / (span > 1 ? span : 1);
  } else if (burst && mod_million(elapsed_us) < 100000) {
    rate *= 5;
  }
  return (-host_log(1 - rand_float()) * 1e6) / rate;
}

static i32 pick_zone(void) {
  double u = rand_float();
  i32 lo = 0;
  i32 hi = o_zones - 1;
  while (lo < hi) {
    i32 mid = (lo + hi) >> 1;
    if (u < zone_weights[mid]) hi = mid;
    else lo = mid + 1;
  }
  return lo;
}

static inline i32 coordinate(void) {
  return rand_int(0, o_arena - 1);
}

static inline void emit(i32 kind, i32 id, i32 other, i32 zone, i32 x, i32 y, i32 amount) {
  e_kind = kind;
  e_id = id;
  e_other = other;
  e_zone = zone;
  e_x = x;
  e_y = y;
  e_amount = amount;
}

// As in traffic.ts, each event's random fields are drawn in the order of its arguments there;
// C leaves the order of arguments unspecified, so they are drawn into locals first.

static void player_action(i32 kind, i32 player, i32 other, i32 x, i32 y, i32 amount) {
  emit(kind, player, other, 0, x, y, amount);
  event_zone = player_zone[player];
}

static void move_event(i32 player) {
  i32 dx = rand_int(-o_step, o_step);
  i32 dy = rand_int(-o_step, o_step);
  player_action(MOVE, player, 0, dx, dy, 0);
}

static void join_event(void) {
  if (offline.size == 0) {
    move_event(bag_pick(&online));
    return;
  }
  i32 player = bag_pick(&offline);
  i32 zone = pick_zone();
  bag_remove(&offline, player);
  bag_add(&online, player);
  bag_add(&zone_players[zone], player);
  player_zone[player] = zone;
  event_zone = zone;
  i32 x = coordinate();
  i32 y = coordinate();
  emit(JOIN, player, 0, zone, x, y, 0);
}

static void spawn_event(void) {
  i32 zone = pick_zone();
  i32 share = TREASURE_ID_POOL / o_zones;
  if (share < 1) share = 1;
  i32 treasure = zone + o_zones * next_treasure[zone];
  next_treasure[zone] = (next_treasure[zone] + 1) % share;
  i32 previous = treasure_zone[treasure];
  if (previous != -1) bag_remove(&zone_treasures[previous], treasure);
  treasure_zone[treasure] = zone;
  bag_add(&zone_treasures[zone], treasure);
  event_zone = zone;
  i32 x = coordinate();
  i32 y = coordinate();
  i32 value = rand_int(1, 100);
  emit(SPAWN, treasure, 0, zone, x, y, value);
}

static void mixed_event(void) {
  if (online.size == 0) {
    join_event();
    return;
  }
  i32 kind = kind_of_roll[rand_int(0, 999)];
  i32 player = bag_pick(&online);
  switch (kind) {
    case MOVE:
      move_event(player);
      return;
    case ROTATE:
      player_action(ROTATE, player, 0, 0, 0, rand_int(0, 65535));
      return;
    case SHOOT: {
      Bag *players = &zone_players[player_zone[player]];
      i32 target = player;
      if (players->size >= 2) {
        target = bag_pick(players);
        if (target == player) target = bag_pick(players);
      }
      if (target == player) move_event(player);
      else player_action(SHOOT, player, target, 0, 0, rand_int(10, 35));
      return;
    }
    case LOOT: {
      Bag *treasures = &zone_treasures[player_zone[player]];
      if (treasures->size == 0) {
        spawn_event();
        return;
      }
      i32 treasure = bag_pick(treasures);
      bag_remove(treasures, treasure);
      treasure_zone[treasure] = -1;
      player_action(LOOT, player, treasure, 0, 0, 0);
      return;
    }
    case SPAWN:
      spawn_event();
      return;
    case LEAVE: {
      bag_remove(&online, player);
      bag_add(&offline, player);
      i32 zone = player_zone[player];
      bag_remove(&zone_players[zone], player);
      player_zone[player] = -1;
      event_zone = zone;
      emit(LEAVE, player, 0, 0, 0, 0, 0);
      return;
    }
    default:
      join_event();
  }
}

/** WorldTraffic.advance(): 0 when every event has been generated. */
static int advance(void) {
  if ((double)index_next >= o_events) return 0;
  i64 index = index_next++;
  elapsed_us += gap_us(index);
  if ((double)index < (double)o_players) join_event();
  else mixed_event();
  e_ts = o_start_us + __builtin_floor(elapsed_us);
  i32 zone = event_zone;
  e_partition = zone < o_partitions ? zone : zone % o_partitions;
  return 1;
}

// ---- the host's interface ----

/**
 * Where the host reads and writes numbers: [0] events, [1] rate, [2] start µs (set before
 * init); after pack(), [3] first_ts_us, [4] min_ts_us, [5] max_ts_us, [6] the index of the
 * next event, [7] the block's length in bytes, [8] a timestamp out of range (see pack).
 */
static double io[16];
static u8 *block_bytes;
static i32 block_capacity;
/**
 * The block's position index, as SourceSpans tracks it: per partition (every event is of
 * stream 0, and a partition is below min(zones, partitions)), its events, least and greatest
 * position; pack() writes it out at `sources` as PackedSources (5 numbers a span: stream,
 * partition, count, min, max, by partition).
 */
static i32 span_slots;
/**
 * The block's events as numbers, for the recorder's main thread to apply without decoding
 * them: per event, 8 int32s (kind, id, other, zone, x, y, amount, partition) at `fields` and
 * its timestamp at `timestamps`. Every world event packs into at least 12 bytes, so a block
 * within the capacity holds at most capacity / 12 of them.
 */
static i32 *fields;
static double *timestamps;
static i32 *span_count;
static double *span_min, *span_max, *sources;

__attribute__((export_name("io"))) double *io_area(void) {
  return io;
}

__attribute__((export_name("blockBytes"))) u8 *block_area(void) {
  return block_bytes;
}

__attribute__((export_name("sources"))) double *sources_area(void) {
  return sources;
}

__attribute__((export_name("fields"))) i32 *fields_area(void) {
  return fields;
}

__attribute__((export_name("timestamps"))) double *timestamps_area(void) {
  return timestamps;
}

/**
 * Set the generator up: io[0..2] and these options, as trafficOptions() gives them, already
 * checked by the host to be in the ranges this code handles (world-traffic-packer.ts). Returns 0,
 * or 1 when the memory could not be had.
 */
__attribute__((export_name("init"))) i32 init(i32 seed, i32 partitions, i32 players, i32 profile, i32 zones, i32 arena, i32 step, i32 capacity) {
  o_events = io[0];
  o_rate = io[1];
  o_start_us = io[2];
  o_partitions = partitions;
  o_players = players;
  o_zones = zones;
  o_arena = arena;
  o_step = step;
  ramp = profile == PROFILE_RAMP;
  burst = profile == PROFILE_BURST;
  // xoroshiro128plus(seed): s01 = -1, s00 = ~seed, s11 = seed, s10 = 0.
  s0 = (0xffffffffull << 32) | (u32)~seed;
  s1 = (u64)(u32)seed << 32;
  index_next = 0;
  elapsed_us = 0;
  event_zone = 0;
  static const i32 mix[7][2] = {{500, MOVE}, {700, ROTATE}, {850, SHOOT}, {910, LOOT}, {970, SPAWN}, {985, LEAVE}, {1000, JOIN}};
  for (i32 roll = 0, i = 0; roll < 1000; roll++) {
    while (roll >= mix[i][0]) i++;
    kind_of_roll[roll] = (u8)mix[i][1];
  }
  player_zone = allocate((unsigned long)players * 4);
  next_treasure = allocate((unsigned long)zones * 4);
  i32 *online_slots = allocate((unsigned long)players * 4);
  i32 *offline_slots = allocate((unsigned long)players * 4);
  i32 *player_slots = allocate((unsigned long)players * 4);
  i32 *treasure_slots = allocate(TREASURE_ID_POOL * 4);
  treasure_zone = allocate(TREASURE_ID_POOL * 4);
  zone_players = allocate((unsigned long)zones * sizeof(Bag));
  zone_treasures = allocate((unsigned long)zones * sizeof(Bag));
  zone_weights = allocate((unsigned long)zones * 8);
  // A world event packs into at most 1 + 8 + 5 + 8 + 1 + 10 + 1 + 13 = 47 bytes (a flag byte;
  // varints of two zigzagged values below 2^53 and of a partition below 2^31; the key and its
  // length; the payload and its length).
  block_capacity = capacity;
  block_bytes = allocate((unsigned long)capacity);
  span_slots = zones < partitions ? zones : partitions;
  span_count = allocate((unsigned long)span_slots * 4);
  span_min = allocate((unsigned long)span_slots * 8);
  span_max = allocate((unsigned long)span_slots * 8);
  sources = allocate((unsigned long)span_slots * 5 * 8);
  fields = allocate((unsigned long)(capacity / 12 + 1) * 8 * 4);
  timestamps = allocate((unsigned long)(capacity / 12 + 1) * 8);
  if (!player_zone || !next_treasure || !online_slots || !offline_slots || !player_slots || !treasure_slots || !treasure_zone ||
      !zone_players || !zone_treasures || !zone_weights || !block_bytes || !span_count || !span_min || !span_max || !sources || !fields || !timestamps) {
    return 1;
  }
  fill_i32(player_zone, -1, players);
  fill_i32(span_count, 0, span_slots);
  fill_i32(next_treasure, 0, zones);
  fill_i32(online_slots, -1, players);
  fill_i32(offline_slots, -1, players);
  fill_i32(player_slots, -1, players);
  fill_i32(treasure_slots, -1, TREASURE_ID_POOL);
  fill_i32(treasure_zone, -1, TREASURE_ID_POOL);
  if (!bag_init(&online, online_slots, players) || !bag_init(&offline, offline_slots, players)) return 1;
  for (i32 p = 0; p < players; p++) bag_add(&offline, p);
  for (i32 z = 0; z < zones; z++) {
    bag_init(&zone_players[z], player_slots, 0);
    bag_init(&zone_treasures[z], treasure_slots, 0);
  }
  double total = 0;
  for (i32 z = 0; z < zones; z++) {
    total += profile == PROFILE_HOT ? 1.0 / (double)(z + 1) : 1.0;
    zone_weights[z] = total;
  }
  for (i32 z = 0; z < zones; z++) zone_weights[z] /= total;
  return out_of_memory;
}

/** Generate `count` events without packing them (to resume); returns how many there were, or -1 out of memory. */
__attribute__((export_name("skip"))) i32 skip(i32 count) {
  i32 n = 0;
  while (n < count && advance()) n++;
  io[6] = (double)index_next;
  return out_of_memory ? -1 : n;
}

static inline u8 *put_varint(u8 *b, u64 value) {
  while (value >= 0x80) {
    *b++ = (u8)(value | 0x80);
    value >>= 7;
  }
  *b++ = (u8)value;
  return b;
}

static inline u64 zigzag(i64 value) {
  return value >= 0 ? (u64)value * 2 : (u64)(-value) * 2 - 1;
}

static inline u8 *put_decimal(u8 *b, u32 n) {
  u8 digits[10];
  i32 count = 0;
  do {
    digits[count++] = (u8)('0' + n % 10);
    n /= 10;
  } while (n != 0);
  while (count > 0) *b++ = digits[--count];
  return b;
}

static inline u8 *put_u16(u8 *b, u32 v) {
  b[0] = (u8)v;
  b[1] = (u8)(v >> 8);
  return b + 2;
}

static inline u8 *put_u32(u8 *b, u32 v) {
  b[0] = (u8)v;
  b[1] = (u8)(v >> 8);
  b[2] = (u8)(v >> 16);
  b[3] = (u8)(v >> 24);
  return b + 4;
}

/** The event's payload (the world codec's encoding) at `b`, after its length. */
static inline u8 *put_payload(u8 *b) {
  static const u8 sizes[7] = {11, 5, 9, 7, 10, 9, 13};
  *b++ = sizes[e_kind];
  *b++ = (u8)e_kind;
  b = put_u32(b, (u32)e_id);
  switch (e_kind) {
    case JOIN:
      b = put_u16(b, (u32)e_zone);
      b = put_u16(b, (u32)e_x);
      return put_u16(b, (u32)e_y);
    case SPAWN:
      b = put_u16(b, (u32)e_zone);
      b = put_u16(b, (u32)e_x);
      b = put_u16(b, (u32)e_y);
      return put_u16(b, (u32)e_amount);
    case MOVE:
      b = put_u16(b, (u32)e_x & 0xffff);
      return put_u16(b, (u32)e_y & 0xffff);
    case ROTATE:
      return put_u16(b, (u32)e_amount);
    case SHOOT:
      b = put_u32(b, (u32)e_other);
      *b++ = (u8)e_amount;
      return b;
    case LOOT:
      return put_u32(b, (u32)e_other);
    default:
      return b;
  }
}

#define MAX_BLOCK_VALUE 4503599627370495.0

/**
 * Generate and pack up to `limit` events into a new block at blockBytes(), as
 * BlockBuilder.addRun packs WorldTraffic's events, stopping early once the data reaches
 * `max_bytes` (the host keeps max_bytes + 64 within the capacity init() was given: no event
 * packs into more). Returns the number packed (then io[3..7] describe the block, and its
 * position index is io[10] spans at sources()), -1 when the memory ran out, -2 when an
 * event's timestamp is beyond a block's range (io[8] holds it), or -3, packing nothing, when
 * the block might not fit the capacity.
 */
__attribute__((export_name("pack"))) i32 pack(i32 limit, i32 max_bytes) {
  u8 *b = block_bytes;
  u8 *const start = block_bytes;
  double first_ts = 0, min_ts = 0, max_ts = 0, prev_ts = 0;
  double prev_position = 0;
  i32 n = 0;
  i32 status = 0;
  // Room for `limit` events, or for events up to max_bytes, whichever is less.
  if ((i64)limit * 64 > block_capacity && (i64)max_bytes + 64 > block_capacity) return -3;
  while (n < limit && (b - start) < max_bytes && advance()) {
    double ts = e_ts;
    double position = (double)(index_next - 1);
    if (!(ts >= 0 && ts <= MAX_BLOCK_VALUE) || !(position <= MAX_BLOCK_VALUE)) {
      io[8] = ts;
      status = -2;
      break;
    }
    if (n == 0) {
      first_ts = ts;
      prev_ts = ts;
      prev_position = 0;
      min_ts = ts;
      max_ts = ts;
    }
    *b++ = 1;  // FLAG_KEY
    b = put_varint(b, zigzag((i64)ts - (i64)prev_ts));
    b = put_varint(b, (u64)e_partition);
    b = put_varint(b, zigzag((i64)position - (i64)prev_position));
    if (e_kind == SPAWN) {
      u8 *length = b++;
      *b++ = 't';
      b = put_decimal(b, (u32)e_id);
      *length = (u8)(b - length - 1);
    } else {
      u8 *length = b++;
      b = put_decimal(b, (u32)e_id);
      *length = (u8)(b - length - 1);
    }
    b = put_payload(b);
    i32 *f = fields + n * 8;
    f[0] = e_kind;
    f[1] = e_id;
    f[2] = e_other;
    f[3] = e_zone;
    f[4] = e_x;
    f[5] = e_y;
    f[6] = e_amount;
    f[7] = e_partition;
    timestamps[n] = ts;
    i32 p = e_partition;
    if (span_count[p]++ == 0) {
      span_min[p] = position;
      span_max[p] = position;
    } else {
      if (position < span_min[p]) span_min[p] = position;
      if (position > span_max[p]) span_max[p] = position;
    }
    prev_ts = ts;
    prev_position = position;
    if (ts < min_ts) min_ts = ts;
    if (ts > max_ts) max_ts = ts;
    n++;
  }
  io[3] = first_ts;
  io[4] = min_ts;
  io[5] = max_ts;
  io[6] = (double)index_next;
  io[7] = (double)(b - start);
  i32 spans = 0;
  for (i32 p = 0; p < span_slots; p++) {
    if (span_count[p] == 0) continue;
    double *span = sources + spans * 5;
    span[0] = 0;
    span[1] = p;
    span[2] = span_count[p];
    span[3] = span_min[p];
    span[4] = span_max[p];
    span_count[p] = 0;
    spans++;
  }
  io[10] = spans;
  if (out_of_memory) return -1;
  return status != 0 ? status : n;
}
