#!/usr/bin/perl
# Operator limits: store quota (507), full queue (503 + Retry-After),
# vconv_formats (presets and uploads), TTL expiry of finished jobs.

use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use File::Temp qw(tempdir);
use Test::More;
use Time::HiRes qw(time);
use VconvNginx;

my $dir = tempdir('vconv-t-XXXXXX', TMPDIR => 1, CLEANUP => 1);
my $mp4 = VconvNginx::make_media($dir, 'mp4');
my $big = VconvNginx::make_media($dir, 'mp4', duration => 6);
my $slow = VconvNginx::make_media($dir, 'slow', duration => 20);
my $tiny = VconvNginx::make_media($dir, 'mp4', size => '160x120', duration => 1);

# --- store quota: 507 --------------------------------------------------------
{
    my $ng = VconvNginx->new(store_opts => 'max_size=200k ttl=1h')->start;
    cmp_ok(-s $big, '>', 200 * 1024, 'test clip is over the 200k quota');
    cmp_ok(-s $tiny, '<', 60 * 1024, 'the tiny clip is under 60k');
    my $small = sub {
        my ($name) = @_;
        my $r = $ng->post_file('/api/jobs?format=mp4&height=96', $tiny, name => 'small.mp4');
        is($r->{status}, 202, "$name: a small upload under the quota is taken")
            or diag("$r->{body} (store files: @{[ map { -s $_ } glob($ng->store . '/*/*') ]})");
        return unless $r->{json} && $r->{json}{id};
        my $job = $ng->wait_job($r->{json}{id}, 30) // {};
        is($job->{status}, 'done', "$name: ... and done");
        is($ng->delete($r->{json}{id})->{status}, 204, "$name: ... and deleted");
    };

    my $r = $ng->post_file('/api/jobs?format=mp4', $big, name => 'big.mp4');
    VconvNginx::is_api_error($r, 507, undef, 'upload over the store quota -> 507');
    is_deeply($ng->store_entries, [], '... refused before anything was stored');
    $small->('after a 507');

    $r = $ng->post_file('/api/jobs?format=mp4', $big, name => 'big.mp4', chunked => 1);
    ok($r->{status} == 507 || $r->{status} == 202,
       'chunked upload over the quota: 507 (or taken then failed)')
        or diag("status $r->{status}");
    if ($r->{status} == 202) {
        my $job = $ng->wait_job($r->{json}{id}, 30);
        isnt($job->{status}, 'done', '... the chunked over-quota job does not end done');
    }
    # nginx finds out mid-body for chunked: a failed record may stay, but
    # no data, and its bytes must no longer count against the quota
    my @data;
    VconvNginx::poll(3, sub {
        @data = grep { !m{/job\.json$} } glob($ng->store . '/*/*');
        !@data;
    });
    is("@data", '', 'no input/output data left in the store after the chunked 507');
    $small->('after a chunked 507');
    $ng->assert_clean_log;
    $ng->stop;
}

# --- full queue: 503 + Retry-After ------------------------------------------
{
    # one worker with a one-thread pool: one job runs, one waits, no more
    my $ng = VconvNginx->new(
        workers => 1,
        main => 'thread_pool vconvq threads=1;',
        http => "    vconv_thread_pool vconvq;\n    vconv_max_queue 1;\n",
    )->start;
    my @ids;
    my @r;
    for my $n (1 .. 3) {
        my $r = $ng->post_file('/api/jobs?format=mp4', $slow, name => "slow$n.mp4");
        push @r, $r;
        push @ids, $r->{json}{id} if $r->{status} == 202 && $r->{json};
    }
    is($r[0]{status}, 202, 'first upload taken');
    my ($full) = grep { $_->{status} == 503 } @r[1, 2];
    ok($full, 'with one thread busy and vconv_max_queue 1, a later upload -> 503')
        or diag('statuses: ' . join ' ', map { $_->{status} } @r);
    if ($full) {
        VconvNginx::is_api_error($full, 503, undef, '503 is a JSON error');
        like($full->{headers}{'retry-after'} // '', qr/^\d+$/, '503 has Retry-After: seconds');
    }
    # the queue frees up: cancel what runs, and a new upload is taken again
    is($ng->delete($_)->{status}, 204, 'DELETE queued/running job') for @ids;
    my $r = $ng->post_file('/api/jobs?format=mp4', $mp4, name => 'after.mp4');
    is($r->{status}, 202, 'after the queue drained an upload is taken');
    my $job = $r->{json} ? $ng->wait_job($r->{json}{id}, 30) : {};
    is($job->{status}, 'done', '... and done');
    $ng->assert_clean_log;
    $ng->stop;
}

# --- vconv_formats restricts presets and uploads ------------------------------
{
    my $ng = VconvNginx->new(http => "    vconv_formats mp4 mp3;\n")->start;
    my $r = $ng->get('/api/presets');
    is($r->{status}, 200, 'presets with vconv_formats');
    my $f = $r->{json} && $r->{json}{formats};
    my @names = sort(ref $f eq 'ARRAY' ? map { ref $_ ? $_->{name} : $_ } @$f
                   : ref $f eq 'HASH' ? keys %$f : ());
    is("@names", 'mp3 mp4', 'presets list only mp4 and mp3');
    for my $fmt (qw(webm gif)) {
        $r = $ng->post_file("/api/jobs?format=$fmt", $mp4);
        VconvNginx::is_api_error($r, 400, 'format_not_allowed', "format=$fmt -> 400 format_not_allowed");
    }
    $r = $ng->post_multipart('/api/jobs', file => $mp4, fields_before => [format => 'webm']);
    VconvNginx::is_api_error($r, 400, 'format_not_allowed', 'multipart format=webm -> 400');
    my $e = $ng->store_entries;
    VconvNginx::poll(3, sub { $e = $ng->store_entries; !@$e });
    is_deeply($e, [], 'refused formats stored nothing');
    $r = $ng->post_file('/api/jobs?format=mp3', $mp4, name => 'a.mp4');
    is($r->{status}, 202, 'format=mp3 allowed');
    my $job = $r->{json} ? $ng->wait_job($r->{json}{id}, 30) : {};
    is($job->{status}, 'done', 'mp3 job done');
    $ng->download($job->{id} // 'x', "$dir/f.mp3");
    my $p = VconvNginx::probe("$dir/f.mp3");
    is($p && $p->{audio} && $p->{audio}{codec_name}, 'mp3', 'mp3 output');
    $ng->assert_clean_log;
    $ng->stop;
}

# --- TTL ----------------------------------------------------------------------
{
    my $ng = VconvNginx->new(store_opts => 'ttl=2s')->start;
    my $r = $ng->post_file('/api/jobs?format=mp4&height=96', $mp4, name => 'ttl.mp4');
    is($r->{status}, 202, 'upload with ttl=2s');
    my $id = $r->{json} ? $r->{json}{id} : 'none';
    my $job = $ng->wait_job($id, 30) // {};
    my $t_done = time;
    is($job->{status}, 'done', 'job done');
    my $exp = VconvNginx::ts($job->{expires}) // 0;
    my $fin = VconvNginx::ts($job->{finished});
    ok($exp - time <= 3 && $exp - time > -1,
       'expires is about 2 s from now') or diag("expires $job->{expires}, now " . time);
    ok(!defined $fin || abs($exp - $fin - 2) <= 1, 'expires = finished + ttl')
        or diag("created $job->{created} finished $job->{finished} expires $job->{expires}");
    is($ng->get("/api/jobs/$id/output")->{status}, 200, 'output served before the TTL');
    my $gone = VconvNginx::poll(15, sub {
        $ng->get("/api/jobs/$id")->{status} == 404 && !-e $ng->store . "/$id";
    }, 0.2);
    my $after = time - $t_done;
    ok($gone, sprintf('after the TTL the job is 404 and its folder gone (%.1f s)', $after));
    cmp_ok($after, '>=', 1, 'not removed (long) before its TTL')
        or diag("created $job->{created} finished $job->{finished} expires $job->{expires}");
    VconvNginx::is_api_error($ng->get("/api/jobs/$id/output"), 404, undef,
                             'expired output -> 404');
    $ng->assert_clean_log;
    $ng->stop;
}

done_testing;
