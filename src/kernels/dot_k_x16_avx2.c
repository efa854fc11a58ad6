/* dot_k_x16_avx2.c - the K-quant tiles on sp_k_x16 rows for the AVX2 level
 * (dot_k_x16_256.h): the products by vpmaddubsw, summed in int16 while
 * they cannot overflow, then vpmaddwd by the scales. */
#define K256_VNNI 0
#define K256_NAME(x) x##_avx2
#include "dot_k_x16_256.h"
