/* docs/datasets.md's examples: find and load Fashion-MNIST and the real
 * MNIST digits in the standard places, then an epoch of shuffled batches. */
#include <sg_datasets.h>
#include <stdio.h>

int main(void)
{
    char dir[4096];
    if (sg_find_dataset("fashion-mnist", dir, sizeof dir) != 0) { /* apt-get install dataset-fashion-mnist */
        sg_print_error(stderr);
        return 1;
    }
    sg_dataset *train = sg_mnist_load(dir, true);   /* 60,000 */
    sg_dataset *test  = sg_mnist_load(dir, false);  /* 10,000 */
    if (!train || !test) {
        sg_print_error(stderr);
        return 1;
    }
    printf("%s: %d + %d images of %dx%d\n", dir, train->n, test->n, train->rows, train->cols);

    if (sg_find_dataset("mnist-digits", dir, sizeof dir) == 0) {
        sg_dataset *digits = sg_mnist_load(dir, true);   /* 8,000 */
        if (!digits)
            sg_print_error(stderr);
        else
            printf("%s: %d training digits\n", dir, digits->n);
        sg_dataset_free(digits);
    } else {
        sg_print_error(stdout);    /* where it looked; sh datasets/fetch_mnist_digits.sh */
    }

    int seen = 0, failed = 0;
    sg_loader *it = sg_loader_new(train->n, &(sg_loader_opts){.batch = 100, .shuffle = true, .seed = 1});
    for (int epoch = 0; epoch < 1; epoch++) {
        const int *idx;
        int b;
        while ((b = sg_loader_next(it, &idx)) > 0) {
            sg_scope_begin();
            sg_tensor *x = sg_dataset_images(train, idx, b, NULL);
            sg_tensor *t = sg_dataset_labels(train, idx, b, &(sg_batch_opts){.one_hot = true});
            /* forward, backward, update */
            if (!x || !t)
                failed = sg_print_error(stderr);
            seen += b;
            sg_scope_end();
        }
    }
    sg_loader_free(it);
    printf("one epoch: %d images in batches of 100\n", seen);
    sg_dataset_free(train);
    sg_dataset_free(test);
    sg_release_memory();
    return failed || seen != 60000;
}
