/* The HTTP client against a real nginx (Debian's /usr/sbin/nginx),
 * started here on 127.0.0.1 with a temporary prefix and configuration,
 * serving files and proxying to a wisp server in this process. Skipped
 * (exit 77) when nginx is not installed.
 *
 * Covered: a static file of 5 MiB (buffered and streamed), keep-alive
 * reuse through nginx (sequential requests share one connection), a
 * proxied request to the wisp upstream, a proxied response of unknown
 * length (nginx re-frames it chunked), an upload through the proxy,
 * nginx's own 404 and 502 (upstream gone), and a per-host limit with
 * queued requests, all answered. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <wisp.h>

#include "test.h"

#define NGINX "/usr/sbin/nginx"
#define FILE_SIZE (5u << 20)

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;

static void bump(_Atomic int *v)
{
    pthread_mutex_lock(&mu);
    atomic_fetch_add(v, 1);
    pthread_cond_broadcast(&cv);
    pthread_mutex_unlock(&mu);
}

static int wait_for(_Atomic int *v, int want)
{
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += 30;
    pthread_mutex_lock(&mu);
    while (atomic_load(v) < want)
        if (pthread_cond_timedwait(&cv, &mu, &until) == ETIMEDOUT)
            break;
    int ok = atomic_load(v) >= want;
    pthread_mutex_unlock(&mu);
    return ok;
}

static unsigned long checksum(const char *p, size_t n)
{
    unsigned long sum = 0;
    for (size_t i = 0; i < n; i++)
        sum = sum * 31 + (unsigned char)p[i];
    return sum;
}

static wisp_loop_t *loop;
static wisp_client_t *cl;
static char *data;

/* ------------------------------------------------ wisp upstream */

static void r_hi(wisp_req_t *req, wisp_res_t *res, void *arg)
{
    (void)req, (void)arg;
    wisp_res_send(res, 200, "text/plain", "from wisp", 9);
}

static void r_stream(wisp_req_t *req, wisp_res_t *res, void *arg)
{
    (void)req, (void)arg;
    wisp_res_status(res, 200);
    for (int i = 0; i < 100; i++)
        wisp_res_write(res, "0123456789", 10);
    wisp_res_end(res);
}

static void r_echo(wisp_req_t *req, wisp_res_t *res, void *arg)
{
    (void)arg;
    wisp_str_t b = wisp_req_body(req);
    char out[64];
    int n = snprintf(out, sizeof out, "%zu %lu", b.len,
                     checksum(b.ptr, b.len));
    wisp_res_send(res, 200, "text/plain", out, (size_t)n);
}

/* ------------------------------------------------ requests */

typedef struct result {
    wisp_client_request_t rq;
    wisp_future_t *f;
    _Atomic int done;
    int err, status;
    size_t len;
    unsigned long sum;
    char body[128];
    size_t streamed;
    unsigned long ssum;
    _Atomic int ended;
    int end_err;
} result;

static void settled(wisp_future_t *f, void *arg)
{
    result *r = arg;
    r->err = wisp_future_error(f);
    if (r->err == 0) {
        const wisp_client_response_t *resp = wisp_future_value(f);
        r->status = wisp_client_response_status(resp);
        const char *b = wisp_client_response_body(resp, &r->len);
        r->sum = checksum(b, r->len);
        memcpy(r->body, b, r->len < 127 ? r->len : 127);
    }
    wisp_future_unref(f);
    bump(&r->done);
}

static void send_task(void *arg)
{
    result *r = arg;
    r->f = wisp_client_send(cl, &r->rq);
    CHECK(r->f != NULL);
    CHECK(wisp_future_then(r->f, settled, r) == 0);
}

static char ubuf[32][128];
static uint16_t ngx_port;

static result *go(int slot, const char *path)
{
    result *r = calloc(1, sizeof *r);
    snprintf(ubuf[slot], sizeof ubuf[slot], "http://127.0.0.1:%u%s",
             ngx_port, path);
    r->rq.url = ubuf[slot];
    return r;
}

static void run(result *r)
{
    CHECK(wisp_loop_post(loop, send_task, r) == 0);
    CHECK(wait_for(&r->done, 1));
}

static wisp_client_stats_t stats;
static _Atomic int stats_n;
static void stats_task(void *arg)
{
    (void)arg;
    wisp_client_stats(cl, &stats);
    bump(&stats_n);
}
static void take_stats(void)
{
    int n = atomic_load(&stats_n);
    CHECK(wisp_loop_post(loop, stats_task, NULL) == 0);
    CHECK(wait_for(&stats_n, n + 1));
}

static int s_data(const char *d, size_t n, void *arg)
{
    result *r = arg;
    for (size_t i = 0; i < n; i++)
        r->ssum = r->ssum * 31 + (unsigned char)d[i];
    r->streamed += n;
    return 0;
}

static void s_end(int err, void *arg)
{
    result *r = arg;
    r->end_err = err;
    bump(&r->ended);
}

/* ------------------------------------------------ nginx */

static uint16_t free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sin = {.sin_family = AF_INET};
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t l = sizeof sin;
    bind(fd, (struct sockaddr *)&sin, l);
    getsockname(fd, (struct sockaddr *)&sin, &l);
    close(fd);
    return ntohs(sin.sin_port);
}

static int port_open(uint16_t p)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sin = {.sin_family = AF_INET};
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    sin.sin_port = htons(p);
    int ok = connect(fd, (struct sockaddr *)&sin, sizeof sin) == 0;
    close(fd);
    return ok;
}

static pid_t start_nginx(const char *dir, uint16_t upstream)
{
    char path[512];
    snprintf(path, sizeof path, "%s/www", dir);
    mkdir(path, 0755);
    snprintf(path, sizeof path, "%s/www/big.bin", dir);
    FILE *f = fopen(path, "wb");
    fwrite(data, 1, FILE_SIZE, f);
    fclose(f);
    ngx_port = free_port();
    snprintf(path, sizeof path, "%s/nginx.conf", dir);
    f = fopen(path, "w");
    fprintf(f,
            "daemon off;\nmaster_process off;\nworker_processes 1;\n"
            "pid %s/nginx.pid;\nerror_log %s/error.log warn;\n"
            "events { worker_connections 256; }\n"
            "http {\n"
            "  access_log off;\n"
            "  client_body_temp_path %s/cb;\n  proxy_temp_path %s/pt;\n"
            "  fastcgi_temp_path %s/ft;\n  uwsgi_temp_path %s/ut;\n"
            "  scgi_temp_path %s/st;\n"
            "  client_max_body_size 16m;\n"
            "  upstream w { server 127.0.0.1:%u; keepalive 4; }\n"
            "  server {\n    listen 127.0.0.1:%u;\n    root %s/www;\n"
            "    location /up/ { proxy_pass http://w/;\n"
            "      proxy_http_version 1.1;\n"
            "      proxy_set_header Connection \"\";\n"
            "      proxy_buffering off; }\n"
            "    location /gone/ { proxy_pass http://127.0.0.1:1/; }\n"
            "  }\n}\n",
            dir, dir, dir, dir, dir, dir, dir, upstream, ngx_port, dir);
    fclose(f);
    pid_t pid = fork();
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        execl(NGINX, "nginx", "-p", dir, "-c", path, (char *)NULL);
        _exit(127);
    }
    /* Wait for the port to open (bounded by 30 s as the failure). */
    for (int i = 0; i < 3000; i++) {
        if (port_open(ngx_port))
            return pid;
        int st;
        if (waitpid(pid, &st, WNOHANG) == pid)
            return -1;
        usleep(10000);
    }
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    return -1;
}

static void *loop_main(void *arg)
{
    wisp_loop_run(arg);
    return NULL;
}

static void destroy_task(void *arg)
{
    (void)arg;
    wisp_client_destroy(cl);
}

int main(void)
{
    if (access(NGINX, X_OK) != 0) {
        printf("nginx not installed (%s): skipped\n", NGINX);
        return 77;
    }
    data = malloc(FILE_SIZE);
    for (size_t i = 0; i < FILE_SIZE; i++)
        data[i] = (char)(i * 13 + (i >> 11));

    wisp_server_config_t cfg;
    wisp_server_config_init(&cfg);
    cfg.host = "127.0.0.1";
    cfg.threads = 1;
    cfg.handle_signals = 0;
    wisp_server_t *srv = wisp_server_create(&cfg);
    wisp_route_opts_t bb = {.max_body_bytes = 16u << 20};
    CHECK(wisp_server_route(srv, WISP_METHOD_GET, "/hi", r_hi, NULL,
                            NULL) == 0);
    CHECK(wisp_server_route(srv, WISP_METHOD_GET, "/stream", r_stream, NULL,
                            NULL) == 0);
    CHECK(wisp_server_route(srv, WISP_METHOD_POST, "/echo", r_echo, NULL,
                            &bb) == 0);
    CHECK(wisp_server_listen(srv) == 0);
    CHECK(wisp_server_start(srv) == 0);

    char dir[] = "/tmp/wisp-nginx-XXXXXX";
    CHECK(mkdtemp(dir) != NULL);
    pid_t ngx = start_nginx(dir, wisp_server_port(srv));
    if (ngx < 0) {
        printf("nginx did not start (see %s/error.log): skipped\n", dir);
        wisp_server_stop(srv);
        wisp_server_wait(srv);
        wisp_server_destroy(srv);
        return 77;
    }

    loop = wisp_loop_create();
    wisp_client_config_t cc;
    wisp_client_config_init(&cc);
    cc.max_per_host = 2;
    cl = wisp_client_create(loop, &cc);
    pthread_t th;
    pthread_create(&th, NULL, loop_main, loop);

    /* A 5 MiB file, three times in a row: one connection. */
    for (int i = 0; i < 3; i++) {
        result *r = go(0, "/big.bin");
        run(r);
        CHECK_EQ_INT(r->err, 0);
        CHECK_EQ_INT(r->status, 200);
        CHECK_EQ_INT((int)r->len, (int)FILE_SIZE);
        CHECK(r->sum == checksum(data, FILE_SIZE));
        free(r);
    }
    take_stats();
    CHECK_EQ_INT((int)stats.connections_opened, 1);
    CHECK_EQ_INT((int)stats.connections_reused, 2);

    /* Streamed. */
    result *r = go(0, "/big.bin");
    r->rq.on_data = s_data;
    r->rq.on_end = s_end;
    r->rq.data_arg = r;
    run(r);
    CHECK_EQ_INT(r->err, 0);
    CHECK(wait_for(&r->ended, 1));
    CHECK_EQ_INT(r->end_err, 0);
    CHECK_EQ_INT((int)r->streamed, (int)FILE_SIZE);
    CHECK(r->ssum == checksum(data, FILE_SIZE));
    free(r);

    /* Proxied to wisp; a response of unknown length comes chunked. */
    r = go(0, "/up/hi");
    run(r);
    CHECK_EQ_INT(r->err, 0);
    CHECK_EQ_INT(r->status, 200);
    CHECK_STRN(r->body, r->len, "from wisp");
    free(r);
    r = go(0, "/up/stream");
    run(r);
    CHECK_EQ_INT(r->err, 0);
    CHECK_EQ_INT((int)r->len, 1000);
    free(r);

    /* Upload through the proxy. */
    r = go(0, "/up/echo");
    r->rq.method = "POST";
    r->rq.body = data;
    r->rq.body_len = 3u << 20;
    run(r);
    CHECK_EQ_INT(r->err, 0);
    char want[64];
    snprintf(want, sizeof want, "%u %lu", 3u << 20,
             checksum(data, 3u << 20));
    CHECK_MSG(strcmp(r->body, want) == 0, "echo: %s", r->body);
    free(r);

    /* nginx's own answers. */
    r = go(0, "/missing");
    run(r);
    CHECK_EQ_INT(r->err, 0);
    CHECK_EQ_INT(r->status, 404);
    free(r);
    r = go(0, "/gone/x");
    run(r);
    CHECK_EQ_INT(r->err, 0);
    CHECK_EQ_INT(r->status, 502);
    free(r);

    /* Ten at once with at most two connections: eight queue. */
    result *many[10];
    for (int i = 0; i < 10; i++) {
        many[i] = go(1 + i, "/big.bin");
        CHECK(wisp_loop_post(loop, send_task, many[i]) == 0);
    }
    for (int i = 0; i < 10; i++) {
        CHECK(wait_for(&many[i]->done, 1));
        CHECK_EQ_INT(many[i]->err, 0);
        CHECK_EQ_INT((int)many[i]->len, (int)FILE_SIZE);
        free(many[i]);
    }
    take_stats();
    CHECK(stats.connections_opened <= 2);
    CHECK(stats.connections_open <= 2);

    CHECK(wisp_loop_post(loop, destroy_task, NULL) == 0);
    wisp_loop_break(loop);
    pthread_join(th, NULL);
    wisp_loop_destroy(loop);
    kill(ngx, SIGTERM);
    waitpid(ngx, NULL, 0);
    wisp_server_stop(srv);
    wisp_server_wait(srv);
    wisp_server_destroy(srv);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    CHECK(system(cmd) == 0);
    free(data);
    return t_done("client_nginx");
}
