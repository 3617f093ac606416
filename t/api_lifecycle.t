#!/usr/bin/perl
# A job's life: SSE progress events, 409 while not ready, DELETE during a
# run and after it, reload and restart keep finished jobs.

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
my $slow = VconvNginx::make_media($dir, 'slow', duration => 20);
my $JSON = VconvNginx->json;

my $ng = VconvNginx->new->start;
my $store = $ng->store;

sub upload {
    my ($file, $q, $name) = @_;
    my $r = $ng->post_file("/api/jobs?$q", $file, name => $name);
    is($r->{status}, 202, "upload $name -> 202");
    return $r->{json} ? $r->{json}{id} : 'none';
}

# --- SSE while a ~5 s conversion runs; 409 while not ready ---------------------
{
    my $id = upload($slow, 'format=mp4', 'slow.mp4');
    my $sse = $ng->get("/api/jobs/$id/events", async => 1, no_buffer => 1,
                       max_time => 120);
    my $r = $ng->get("/api/jobs/$id/output");
    my $job = $ng->get("/api/jobs/$id")->{json} // {};
    if (($job->{status} // '') ne 'done') {
        VconvNginx::is_api_error($r, 409, undef, 'output while not ready -> 409 JSON');
    } else {
        fail('job already done: the slow clip is not slow enough for 409');
    }
    $r = $ng->head("/api/jobs/$id/output");
    ok($r->{status} == 409 || ($job->{status} // '') eq 'done', 'HEAD output while not ready -> 409');

    $r = $sse->wait(130);
    is($r->{status}, 200, 'events -> 200');
    like($r->{headers}{'content-type'} // '', qr{^text/event-stream}, 'text/event-stream');
    is($r->{curl_exit}, 0, 'the stream closed by itself after the terminal event')
        or diag("curl exit $r->{curl_exit}: $r->{curl_err}");
    my @ev;
    for my $block (split /\r?\n\r?\n/, $r->{body}) {
        my ($name, $data) = ('message', '');
        for (split /\r?\n/, $block) {
            next if /^:/;
            $name = $1 if /^event:\s?(.*)$/;
            $data .= $1 if /^data:\s?(.*)$/;
        }
        next if $data eq '' && $name eq 'message';
        push @ev, [$name, eval { $JSON->decode($data) }];
    }
    my @prog = map { $_->[1] && $_->[1]{progress} } grep { $_->[0] eq 'progress' } @ev;
    cmp_ok(scalar @prog, '>=', 2, 'at least two progress events') or diag($r->{body});
    my $mono = !grep { !defined $prog[$_] || $prog[$_] < $prog[$_ - 1] } 1 .. $#prog;
    ok($mono && @prog && defined $prog[0] && $prog[-1] > $prog[0],
       'progress increases: ' . join(' ', map { $_ // 'undef' } @prog));
    my @term = grep { $_->[0] =~ /^(done|failed|canceled)$/ } @ev;
    is(scalar @term, 1, 'exactly one terminal event');
    is(@ev && $ev[-1][0], 'done', 'the last event is done');
    is(@ev && $ev[-1][1] && $ev[-1][1]{status}, 'done', 'its data is the done job');
    $job = $ng->wait_job($id, 60) // {};
    is($job->{status}, 'done', 'slow job done');
    diag(sprintf 'slow job: %d progress events over %.1f s', scalar @prog, $r->{time});

    # events of a finished job: the terminal event at once, then the end
    $r = $ng->get("/api/jobs/$id/events", max_time => 10);
    is($r->{curl_exit}, 0, 'events of a done job close at once');
    like($r->{body}, qr/^event:\s?done$/m, '... with the done event');
}

# --- DELETE during a run -----------------------------------------------------
{
    my $id = upload($slow, 'format=mp4', 'cancel.mp4');
    my $st = VconvNginx::poll(20, sub {
        my $s = $ng->get("/api/jobs/$id")->{json};
        $s && $s->{status} =~ /running|done|failed/ ? $s->{status} : undef;
    });
    is($st, 'running', 'job is running');
    ok(-d "$store/$id", 'job folder exists');
    my $t = time;
    my $r = $ng->delete($id);
    my $dt = time - $t;
    is($r->{status}, 204, 'DELETE running job -> 204');
    is($r->{body}, '', '204 has no body');
    cmp_ok($dt, '<', 2, sprintf('DELETE answered within 2 s (%.2f)', $dt));
    my $gone = VconvNginx::poll(3, sub { !-e "$store/$id" });
    ok($gone, 'job folder gone from the store')
        or diag(join ' ', glob("$store/$id/*"));
    VconvNginx::is_api_error($ng->get("/api/jobs/$id"), 404, undef, 'GET canceled job -> 404');
    is($ng->get("/api/jobs/$id/output")->{status}, 404, 'its output -> 404');
}

# --- DELETE a done job -------------------------------------------------------
{
    my $id = upload($mp4, 'format=mp4&height=96', 'done.mp4');
    my $job = $ng->wait_job($id, 30) // {};
    is($job->{status}, 'done', 'small job done');
    ok(-d "$store/$id", 'its folder exists');
    my $r = $ng->delete($id);
    is($r->{status}, 204, 'DELETE done job -> 204');
    ok(VconvNginx::poll(3, sub { !-e "$store/$id" }), 'files gone');
    is($ng->get("/api/jobs/$id")->{status}, 404, 'GET -> 404');
    is($ng->get("/api/jobs/$id/output")->{status}, 404, 'output -> 404');
    is($ng->delete($id)->{status}, 404, 'second DELETE -> 404');
}

# --- reload and restart keep finished jobs -----------------------------------
{
    my $id = upload($mp4, 'format=mp4&height=120', 'keep.mp4');
    my $job = $ng->wait_job($id, 30) // {};
    is($job->{status}, 'done', 'job to keep done');
    my $before = $ng->get("/api/jobs/$id")->{json};

    my @w = @{ $ng->worker_pids };
    $ng->reload;
    my @w2 = @{ $ng->worker_pids };
    ok(!grep({ my $o = $_; grep { $_ == $o } @w2 } @w), 'reload replaced the workers');
    my $r = $ng->get("/api/jobs/$id");
    is($r->{status}, 200, 'job visible after reload');
    is_deeply($r->{json}, $before, '... same job JSON');
    $r = $ng->download($id, "$dir/reload.mp4");
    is($r->{status}, 200, 'output after reload');
    is(-s "$dir/reload.mp4", $job->{output}{bytes}, '... same size');

    $ng->restart;
    $r = $ng->get("/api/jobs/$id");
    is($r->{status}, 200, 'job visible after restart (from job.json)');
    is($r->{json} && $r->{json}{status}, 'done', '... done');
    is($r->{json} && $r->{json}{output} && $r->{json}{output}{bytes},
       $job->{output}{bytes}, '... same output.bytes');
    is($r->{json} && $r->{json}{input} && $r->{json}{input}{name}, 'keep.mp4',
       '... same input.name');
    $r = $ng->download($id, "$dir/restart.mp4");
    is($r->{status}, 200, 'output after restart');
    my $p = VconvNginx::probe("$dir/restart.mp4");
    is($p && $p->{video} && "$p->{video}{codec_name} $p->{video}{width}x$p->{video}{height}",
       'h264 160x120', 'output after restart is the video');

    # a new job after restart works too
    my $id2 = upload($mp4, 'format=mp4&height=96', 'after.mp4');
    is(($ng->wait_job($id2, 30) // {})->{status}, 'done', 'new job after restart done');
}

$ng->assert_clean_log;
$ng->stop;
done_testing;
