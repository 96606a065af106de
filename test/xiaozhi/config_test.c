/* xiaozhi-server config: INI parsing, FILE:LINE errors, --set, env. */
#include <stdlib.h>
#include <string.h>

#include "../test.h"
#include "config.h"

typedef struct row {
    const char *name;
    const char *text;
    const char *err;    /* NULL: accepted; else a substring of the error */
} row;

static const row rows[] = {
    {"empty file", "", NULL},
    {"comments and blanks", "# c\n; c\n\n   \n", NULL},
    {"section and key", "[server]\nport = 9000\n", NULL},
    {"CRLF lines", "[server]\r\nport = 9000\r\n", NULL},
    {"quoted value keeps spaces", "[scripted]\nstt_text = \"  a b \"\n", NULL},
    {"inline comment after space", "[server]\nport = 9000 # the port\n", NULL},
    {"bool words", "[auth]\nenabled = yes\n", NULL},
    {"enum", "[pipeline]\nmode = scripted\n", NULL},
    {"negative timezone", "[ota]\ntimezone_offset = -300\n", NULL},
    {"unknown section", "[nope]\n", "test.ini:1: unknown section [nope]"},
    {"unknown key", "[server]\nportt = 1\n", "test.ini:2: unknown key"},
    {"key before section", "port = 1\n", "test.ini:1: key 'port' before"},
    {"no equals", "[server]\nport\n", "test.ini:2: expected 'key = value'"},
    {"not a number", "[server]\nport = 80x\n", "test.ini:2: server.port: '80x' is not a whole number"},
    {"out of range", "[server]\nport = 70000\n", "out of range 0..65535"},
    {"bad bool", "[auth]\nenabled = maybe\n", "is not true or false"},
    {"bad enum", "[pipeline]\nmode = llama\n", "is not echo, scripted or voice"},
    {"frame not accepted by device", "[audio]\ndownlink_frame_ms = 30\n", "not an Opus frame"},
    {"rate not opus", "[audio]\ndownlink_sample_rate = 22050\n", "not an Opus rate"},
    {"unterminated quote", "[scripted]\nstt_text = \"abc\n", "unterminated quoted value"},
    {"header without bracket", "[server\n", "section header without ']'"},
    {"line number counts", "[server]\n\n# x\nhost = a\nbad = 1\n", "test.ini:5:"},
    {"emotion outside the vocabulary", "[scripted]\nemotion = grumpy\n", "not an emotion the device shows"},
    {"emotion in the vocabulary", "[scripted]\nemotion = winking\n", NULL},
    {"empty number", "[server]\nport =\n", "is not a whole number"},
};

int main(void)
{
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        xz_config_t c;
        char err[600] = "";
        xz_config_defaults(&c, "/www");
        int r = xz_config_parse(&c, "test.ini", rows[i].text,
                                strlen(rows[i].text), err, sizeof err);
        if (!rows[i].err)
            CHECK_MSG(r == 0, "%s: %s", rows[i].name, err);
        else
            CHECK_MSG(r < 0 && strstr(err, rows[i].err), "%s: got '%s'",
                      rows[i].name, err);
    }

    xz_config_t c;
    char err[600];
    xz_config_defaults(&c, "/www");
    CHECK_EQ_INT(c.port, 8000);
    CHECK_EQ_INT(c.pipeline_mode, XZ_PIPE_ECHO);
    CHECK_EQ_INT(c.idle_close_s, 180);
    CHECK(!strcmp(c.www, "/www"));
    const char *ini = "[server]\nport = 9000\n[scripted]\n"
                      "stt_text = \"  a b \"\n[ota]\ntimezone_offset=-300\n"
                      "[server]\nhttp_port=8003 ; second port\n";
    CHECK_EQ_INT(xz_config_parse(&c, "x", ini, strlen(ini), err, sizeof err),
                 0);
    CHECK_EQ_INT(c.port, 9000);
    CHECK_EQ_INT(c.http_port, 8003);
    CHECK_EQ_INT(c.timezone_offset, -300);
    CHECK(!strcmp(c.stt_text, "  a b "));

    /* --set and env */
    CHECK_EQ_INT(xz_config_set(&c, "auth.enabled", "true", err, sizeof err),
                 0);
    CHECK_EQ_INT(c.auth_enabled, 1);
    CHECK(xz_config_set(&c, "auth.nope", "1", err, sizeof err) < 0);
    CHECK(strstr(err, "unknown key 'auth.nope'") != NULL);
    setenv("XIAOZHI_PORT", "1234", 1);
    setenv("XIAOZHI_AUTH_SECRET", "s3cret", 1);
    CHECK_EQ_INT(xz_config_env(&c, err, sizeof err), 0);
    CHECK_EQ_INT(c.port, 1234);
    CHECK(!strcmp(c.auth_secret, "s3cret"));
    setenv("XIAOZHI_HTTP_PORT", "99999", 1);
    CHECK(xz_config_env(&c, err, sizeof err) < 0);
    CHECK(strstr(err, "XIAOZHI_HTTP_PORT: server.http_port") != NULL);
    unsetenv("XIAOZHI_HTTP_PORT");

    /* allow-list */
    xz_config_set(&c, "auth.allowed_devices", " AA:bb:cc:00:00:01 , x ",
                  err, sizeof err);
    CHECK(xz_config_device_allowed(&c, "aa:bb:cc:00:00:01"));
    CHECK(xz_config_device_allowed(&c, "x"));
    CHECK(!xz_config_device_allowed(&c, "aa:bb:cc:00:00:0"));
    CHECK(!xz_config_device_allowed(&c, ""));

    /* a string longer than its buffer is refused, not truncated */
    char longv[600];
    memset(longv, 'a', sizeof longv - 1);
    longv[sizeof longv - 1] = 0;
    CHECK(xz_config_set(&c, "scripted.stt_text", longv, err, sizeof err) < 0);
    CHECK(strstr(err, "longer than 511 bytes") != NULL);

    /* missing file */
    CHECK(xz_config_load(&c, "/nonexistent/x.ini", err, sizeof err) < 0);
    CHECK(strstr(err, "/nonexistent/x.ini:") == err);

    /* the example file in the repository parses */
    CHECK_MSG(xz_config_load(&c, XZ_SOURCE_INI, err, sizeof err) == 0,
              "xiaozhi.ini: %s", err);
    return t_done("xz_config");
}
