/* balance_impl.h -- internal: shares of one image's work for threads
 * whose cores run at different speeds.
 *
 *   int at[T + 1];
 *   double cut[T + 1];
 *   size buffers for heed_balance_most_units(T, total, pieces) units;
 *   heed_balance_split(speed, T, total, step, at, cut); // thread t: units at[t] .. at[t+1]-1
 *   ... each thread times its share ...
 *   heed_balance_note(speed, T, cut, seconds);          // after the region
 *
 * A batch-1 layer is cut into one share per thread, and the layer takes as
 * long as the slowest share. Equal shares are seldom equally fast: on the
 * benchmark machine (two vCPUs of a shared host) one share of a layer took
 * 5-30% longer than the other, which one depending on the layer and
 * changing between runs (a core slowed by the host, or a share reading
 * what the other core wrote), and a hybrid CPU's efficiency cores are
 * slower by design. So each layer learns each thread's speed on it (work
 * per second, relative to the team's mean) from the shares it ran, as a
 * moving average, and its shares follow the speeds. Where the work is cut never
 * changes a result: callers cut at whole vectors of columns or between
 * output channels, which no sum crosses.
 */
#ifndef HEED_BALANCE_IMPL_H
#define HEED_BALANCE_IMPL_H

/* speed[0..T): the layer's learnt speeds (0: not timed yet). Sets cut[0..T],
 * cut[0] = 0 and cut[T] = 1, thread t's share cut[t+1] - cut[t]. T must be
 * at least 1 and at most the speed array's length. */
void heed_balance_cuts(const float *speed, int T, double *cut);

/* The same cut of `total` units (vectors of columns, rows, output
 * channels), each point a multiple of `step` or `total`: thread t takes
 * units at[t] .. at[t+1]-1, and cut[] gets the shares as made. */
void heed_balance_split(const float *speed, int T, int total, int step, int *at, double *cut);

/* The largest share a thread of T can be given. */
double heed_balance_max_share(int T);

/* The most units of `total` that one of `pieces` equal pieces of a
 * thread's share can hold, whatever the speeds (heed_balance_split's
 * rounding included). Work buffers sized for it at the first call never
 * grow as the speeds move (each growth left the old buffer's pages
 * behind: ResNet-18's peak memory rose by 21 MB). */
int heed_balance_most_units(int T, int total, int pieces);

/* Thread t ran share cut[t+1] - cut[t] in seconds[t]: updates speed[0..T).
 * Shares run too quickly to time well are ignored. */
void heed_balance_note(float *speed, int T, const double *cut, const double *seconds);

#endif
