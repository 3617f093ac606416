#!/usr/bin/perl
# The module loads into Debian's nginx, answers, stops; nginx -t accepts
# conf.example and refuses bad directive values.

use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use File::Path qw(make_path);
use File::Temp qw(tempdir);
use IO::Socket::INET;
use Test::More;
use VconvNginx;

ok(-f VconvNginx::module_path(), 'module is built: ' . VconvNginx::module_path())
    or BAIL_OUT('run make build first');

# --- loads, answers on a free port, stops ------------------------------

{
    my $ng = VconvNginx->new(http => "    vconv_max_queue 16;\n")->start;
    my $port = $ng->port;
    my $r = $ng->get('/');
    is($r->{status}, 200, 'static page through location / answers');
    $r = $ng->get('/api/presets');
    is($r->{status}, 200, 'a vconv handler answers (/api/presets)');
    ok($r->{json}, '... with JSON');
    my @workers = @{ $ng->worker_pids };
    is(scalar @workers, 2, 'two workers run');
    my $master = $ng->master_pid;
    $ng->assert_clean_log;
    $ng->stop;
    ok(!kill(0, $master), 'master gone after stop');
    ok(!(grep { kill 0, $_ } @workers), 'workers gone after stop');
    my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $port,
                                  Proto => 'tcp', Timeout => 1);
    ok(!$s, 'port closed after stop');
    unlike($ng->error_log, qr/\[alert\]|\[emerg\]|exited on signal/,
           'no alert after a graceful stop');
}

# --- conf.example --------------------------------------------------------

SKIP: {
    my $example = "$VconvNginx::ROOT/conf.example";
    ok(-f $example, 'conf.example exists')
        or skip 'conf.example missing (the lead writes it)', 2;
    open my $fh, '<', $example or die $!;
    my $conf = do { local $/; <$fh> };
    close $fh;

    my $dir = tempdir('vconv-ex-XXXXXX', TMPDIR => 1, CLEANUP => 1);
    my $module = VconvNginx::module_path();

    # listen ports -> free ones (nginx -t does not bind, but keep it safe)
    my %ports;
    $conf =~ s{^(\s*listen\s+)(?:([\w.\[\]:]+):)?(\d+)\b}
              {$1 . '127.0.0.1:' . ($ports{$3} //= VconvNginx::free_port())}gme;

    # absolute writable paths -> inside the temp dir
    $conf =~ s{(?<![\w/.])(/(?:var|run|srv|home|tmp|opt)/[\w./-]*)}{
        my $p = $1; my $t = "$dir$p";
        if ($t =~ m{/[^/]*\.\w+$} || $t =~ m{\.(?:log|pid|sock)$}) {
            (my $d = $t) =~ s{/[^/]+$}{}; make_path($d);
        } else { make_path($t); }
        $t;
    }ge;
    # load_module of our .so (any path) -> the built one; after the paths
    # above, since the checkout itself may live under /tmp
    my $n = ($conf =~ s{(load_module\s+)\S*ngx_http_vconv_module\.so\s*;}
                       {$1$module;}g);
    ok($n, 'conf.example loads the module with load_module');

    # the HTTPS server's certificate: a self-signed one
    my ($cert, $key) = VconvNginx::tls_pair($dir);
    $conf =~ s{(\bssl_certificate\s+)\S+;}{$1$cert;}g;
    $conf =~ s{(\bssl_certificate_key\s+)\S+;}{$1$key;}g;

    # the page: the repo's html/
    $conf =~ s{(\broot\s+)\S*html\S*;}{$1$VconvNginx::ROOT/html;}g;
    # a relative or system error_log/pid is fine; the -e/-p below cover it

    open my $out, '>', "$dir/nginx.conf" or die $!;
    print $out $conf;
    close $out;
    my $res = `'$VconvNginx::NGINX' -t -p '$dir/' -c '$dir/nginx.conf' -e '$dir/error.log' 2>&1`;
    ok($? == 0, 'nginx -t accepts conf.example (paths, ports, module substituted)')
        or diag($res);
}

# --- directive values ----------------------------------------------------

my @good = (
    'vconv_max_queue 10;',
    'vconv_formats mp4 webm gif mp3;',
    'vconv_max_resolution 1920x1080;',
    'vconv_max_duration 30m;',
    'vconv_max_output_size 2g;',
    'vconv_stall_timeout 30s;',
    'vconv_codec_threads 2;',
    'vconv_node n1;',
);
my @bad = (
    'vconv_max_queue abc;',
    'vconv_max_queue -1;',
    'vconv_formats mp4 bogus;',
    'vconv_max_resolution 10;',
    'vconv_max_resolution 0x0;',
    'vconv_max_duration forever;',
    'vconv_max_output_size lots;',
);
# these replace the harness's own vconv_store / vconv_zone lines
my @bad_opts = (
    [store_opts => 'ttl=soon'],
    [store_opts => 'max_size=huge'],
    [store_opts => 'colour=blue'],
    [zone => 'tiny'],
    [zone => '1k'],
);

{
    my $ng = VconvNginx->new(http => join("\n", map { "    $_" } @good));
    my ($ok, $out) = $ng->test_conf;
    ok($ok, 'nginx -t accepts good values: ' . join(' ', @good)) or diag($out);
}
for my $d (@bad) {
    my $ng = VconvNginx->new(http => "    $d\n");
    my ($ok, $out) = $ng->test_conf;
    ok(!$ok, "nginx -t refuses '$d'");
    my $line = conf_line($ng, $d);
    like($out, qr/\[emerg\].*nginx\.conf:$line\b/,
         "... with an [emerg] pointing at its line $line") or diag($out);
}

for my $o (@bad_opts) {
    my $ng = VconvNginx->new(@$o);
    my ($ok, $out) = $ng->test_conf;
    my $what = $o->[0] eq 'zone' ? "vconv_zone $o->[1]" : "vconv_store ... $o->[1]";
    ok(!$ok, "nginx -t refuses '$what'") or diag($out);
    my $line = conf_line($ng, $o->[1]);
    like($out, qr/\[emerg\].*nginx\.conf:$line\b/,
         "... with an [emerg] pointing at its line $line") or diag($out);
}

{
    # a location handler outside a location, or twice, is an error too
    my $ng = VconvNginx->new(http => "    vconv_upload;\n");
    my ($ok, $out) = $ng->test_conf;
    ok(!$ok, 'nginx -t refuses vconv_upload at http{} level');
}

done_testing;

# the line number of the first line of the instance's nginx.conf with $text
sub conf_line {
    my ($ng, $text) = @_;
    open my $fh, '<', $ng->prefix . '/nginx.conf' or return 0;
    while (<$fh>) {
        return $. if index($_, $text) >= 0;
    }
    return 0;
}
