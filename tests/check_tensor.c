/* check_tensor.c -- tensors: allocation, shape arithmetic, views, scratch. */
#include <stdint.h>
#include <string.h>
#include <unistd.h>

#include "tensor.h"
#include "testutil.h"

START_TEST(alloc_is_zeroed_aligned_and_indexed_nchw) {
    heed_tensor t;
    ck_assert_int_eq(heed_tensor_alloc(&t, 2, 3, 4, 5), HEED_OK);
    ck_assert_uint_eq((uintptr_t)t.data % 64, 0);
    ck_assert_uint_eq(heed_tensor_count(&t), 120);
    for (size_t i = 0; i < heed_tensor_count(&t); i++) ck_assert_float_eq(t.data[i], 0.0f);
    /* NCHW: w fastest, then h, c, n. */
    ck_assert_uint_eq(heed_tensor_index(&t, 1, 2, 3, 4), 119);
    ck_assert_uint_eq(heed_tensor_index(&t, 0, 1, 0, 0), 20);
    ck_assert_uint_eq(heed_tensor_index(&t, 1, 0, 0, 0), 60);
    heed_tensor_free(&t);
    ck_assert_ptr_null(t.data);
    heed_tensor_free(&t); /* twice is harmless */
}
END_TEST

START_TEST(huge_or_bad_shapes_are_refused) {
    heed_tensor t;
    ck_assert_int_eq(heed_tensor_alloc(&t, 65536, 65536, 65536, 65536), HEED_ERR_LIMIT);
    ck_assert_ptr_null(t.data);
    ck_assert_int_eq(heed_tensor_alloc(&t, 1 << 16, 1 << 16, 1, 1), HEED_ERR_LIMIT);
    ck_assert_int_eq(heed_tensor_alloc(&t, 0, 3, 4, 5), HEED_ERR_LIMIT);
    ck_assert_int_eq(heed_tensor_alloc(&t, 1, -3, 4, 5), HEED_ERR_LIMIT);
    ck_assert_ptr_nonnull(strstr(heed_last_error(), "(1, -3, 4, 5)"));
    size_t n;
    ck_assert_int_eq(heed_shape_count(1 << 15, 1 << 15, 2, 1, &n), HEED_ERR_LIMIT);
    ck_assert_int_eq(heed_shape_count(1 << 15, 1 << 15, 1, 1, &n), HEED_OK);
    ck_assert_uint_eq(n, (size_t)1 << 30);
}
END_TEST

START_TEST(ensure_reuses_storage_and_reshape_keeps_count) {
    heed_tensor t = {0};
    ck_assert_int_eq(heed_tensor_ensure(&t, 4, 8, 2, 2), HEED_OK);
    float *p = t.data;
    ck_assert_int_eq(heed_tensor_ensure(&t, 2, 8, 2, 2), HEED_OK);
    ck_assert_ptr_eq(t.data, p);
    ck_assert_int_eq(heed_tensor_ensure(&t, 4, 8, 2, 2), HEED_OK); /* back to capacity */
    ck_assert_ptr_eq(t.data, p);
    ck_assert_int_eq(heed_tensor_reshape(&t, 4, 32, 1, 1), HEED_OK);
    ck_assert_int_eq(t.c, 32);
    ck_assert_int_eq(heed_tensor_reshape(&t, 4, 33, 1, 1), HEED_ERR_SHAPE);
    heed_tensor_free(&t);
}
END_TEST

START_TEST(views_do_not_own_and_copy_checks_counts) {
    float buf[6] = {1, 2, 3, 4, 5, 6};
    heed_tensor v = heed_tensor_view(buf, 1, 2, 3, 1);
    heed_tensor t;
    ck_assert_int_eq(heed_tensor_alloc(&t, 6, 1, 1, 1), HEED_OK);
    ck_assert_int_eq(heed_tensor_copy(&t, &v), HEED_OK);
    ck_assert_float_eq(t.data[5], 6.0f);
    heed_tensor small;
    ck_assert_int_eq(heed_tensor_alloc(&small, 5, 1, 1, 1), HEED_OK);
    ck_assert_int_eq(heed_tensor_copy(&small, &v), HEED_ERR_SHAPE);
    heed_tensor_free(&v); /* forgets, does not free the stack buffer */
    ck_assert_float_eq(buf[0], 1.0f);
    heed_tensor_free(&t);
    heed_tensor_free(&small);
}
END_TEST

/* Copying between empty tensors (no data, count 0) copies nothing; it
 * passed their NULL data to memmove, which is undefined even for 0 bytes
 * (UBSan: "null pointer passed as argument 1"). */
START_TEST(copy_of_empty_tensors_is_a_no_op) {
    heed_tensor a = {0}, b = {0};
    ck_assert_int_eq(heed_tensor_copy(&a, &b), HEED_OK);
    ck_assert_ptr_null(a.data);
    heed_tensor_zero(&a);
    heed_tensor_fill(&a, 1.0f);
}
END_TEST

START_TEST(scratch_grows_only) {
    heed_scratch s = {0};
    float *a, *b;
    ck_assert_int_eq(heed_scratch_get(&s, 100, &a), HEED_OK);
    ck_assert_int_eq(heed_scratch_get(&s, 50, &b), HEED_OK);
    ck_assert_ptr_eq(a, b);
    ck_assert_int_eq(heed_scratch_get(&s, 1000, &b), HEED_OK);
    ck_assert_uint_ge(s.cap, 1000);
    heed_scratch_free(&s);
}
END_TEST

/* A count whose byte size passes SIZE_MAX is refused: count * sizeof(float)
 * wrapped to a few bytes, which heed_scratch_get allocated and recorded as
 * the huge capacity asked, so every later get of any size returned that
 * block (a heap overflow for the caller). */
START_TEST(scratch_refuses_counts_past_memory) {
    heed_scratch s = {0};
    float *a = NULL;
    ck_assert_int_eq(heed_scratch_get(&s, 10, &a), HEED_OK);
    float *b = a;
    ck_assert_int_eq(heed_scratch_get(&s, SIZE_MAX / sizeof(float) + 2, &b), HEED_ERR_NOMEM);
    ck_assert_msg(strstr(heed_last_error(), "work space"), "%s", heed_last_error());
    ck_assert_uint_eq(s.cap, 10); /* unchanged */
    ck_assert_ptr_eq(s.data, a);
    ck_assert_int_eq(heed_scratch_get(&s, 1000, &b), HEED_OK);
    ck_assert_uint_ge(s.cap, 1000);
    b[999] = 1.0f;
    heed_scratch_free(&s);
}
END_TEST

/* Live blocks count against the memory limit; a block that would pass it
 * is refused (NULL, HEED_ERR_NOMEM saying so), and freeing gives it back. */
START_TEST(allocations_count_against_the_memory_limit) {
    const size_t before = heed_memory_in_use(), mb = (size_t)1 << 20;
    heed_tensor t;
    ck_assert_int_eq(heed_tensor_alloc(&t, 1, 1, 512, 512), HEED_OK); /* 1 MiB */
    ck_assert_uint_ge(heed_memory_in_use(), before + mb);
    ck_assert_uint_le(heed_memory_in_use(), before + mb + 128); /* one header */
    heed_tensor_free(&t);
    ck_assert_uint_eq(heed_memory_in_use(), before);

    heed_set_memory_limit(before + 3 * mb / 2);
    ck_assert_uint_eq(heed_memory_limit(), before + 3 * mb / 2);
    ck_assert_int_eq(heed_tensor_alloc(&t, 1, 2, 512, 512), HEED_ERR_NOMEM); /* 2 MiB */
    ck_assert_ptr_null(t.data);
    /* sizes in a unit that shows them: 2 MiB is not "0.00 GiB" */
    ck_assert_msg(strstr(heed_last_error(), "tensor (1, 2, 512, 512): 2.00 MiB") &&
                      strstr(heed_last_error(), "over the memory limit of ") &&
                      strstr(heed_last_error(), " MiB (heed_set_memory_limit)") &&
                      !strstr(heed_last_error(), "GiB") &&
                      strstr(heed_last_error(), "heed_set_memory_limit"),
                  "%s", heed_last_error());
    ck_assert_uint_eq(heed_memory_in_use(), before); /* the refused block left no count */
    ck_assert_int_eq(heed_tensor_alloc(&t, 1, 1, 512, 512), HEED_OK);
    float *more = heed_alloc(mb); /* 1 + 1 MiB live: over */
    ck_assert_ptr_null(more);
    heed_tensor_free(&t);
    more = heed_alloc(mb);
    ck_assert_ptr_nonnull(more);
    ck_assert_uint_eq((uintptr_t)more % 64, 0);
    heed_free(more);
    heed_free(NULL);

    /* 0: the machine's physical memory again */
    heed_set_memory_limit(0);
    const long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGESIZE);
    ck_assert_uint_eq(heed_memory_limit(), (size_t)pages * (size_t)page);
}
END_TEST

Suite *heed_suite_tensor(void) {
    Suite *s = suite_create("tensor");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, alloc_is_zeroed_aligned_and_indexed_nchw);
    tcase_add_test(tc, huge_or_bad_shapes_are_refused);
    tcase_add_test(tc, ensure_reuses_storage_and_reshape_keeps_count);
    tcase_add_test(tc, views_do_not_own_and_copy_checks_counts);
    tcase_add_test(tc, copy_of_empty_tensors_is_a_no_op);
    tcase_add_test(tc, scratch_grows_only);
    tcase_add_test(tc, scratch_refuses_counts_past_memory);
    tcase_add_test(tc, allocations_count_against_the_memory_limit);
    suite_add_tcase(s, tc);
    return s;
}
