#!/usr/bin/perl
# A worker that dies mid-job (SIGKILL, then SIGSEGV): the job becomes
# failed "interrupted" within a few seconds (the sweeper of a surviving or
# new worker marks it), its input and temporary output are removed (only
# job.json stays until the TTL), jobs done before stay done, and new jobs
# complete.

use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use File::Temp qw(tempdir);
use Test::More;
use Time::HiRes qw(time sleep);
use VconvNginx;
use VconvMedia ();
use VconvHostile qw(:all);

my $dir = tempdir('vconv-hw-XXXXXX', TMPDIR => 1, CLEANUP => 1);
my $J = VconvNginx->json;

my $long = "$dir/long1080.mp4";
ff('-f', 'lavfi', '-i', 'testsrc2=size=1920x1080:rate=25:duration=10',
   '-c:v', 'libx264', '-preset', 'ultrafast', '-pix_fmt', 'yuv420p', $long);
my $small = VconvMedia::make_media($dir, 'mp4', size => '160x120', duration => 1,
                                   name => 'small.mp4');

# the workers we kill are meant to die: the harness must not stop the
# test when it sees "exited on signal" in the log
use constant NC => (no_crash_check => 1);

# a worker's own ticks and, in process isolation, those of its sandbox
# helper's job children: the job runs there
sub cpu_ticks {
    my ($pid) = @_;
    my $t = proc_ticks($pid) // return undef;
    for my $h (@{ VconvNginx::_children($pid) }) {
        $t += proc_ticks($_) // 0 for @{ VconvNginx::_children($h) };
    }
    return $t;
}

sub proc_ticks {
    my ($pid) = @_;
    my $t = 0;
    opendir my $d, "/proc/$pid/task" or return undef;
    for my $tid (grep { /^\d+$/ } readdir $d) {
        open my $fh, '<', "/proc/$pid/task/$tid/stat" or next;
        my $st = <$fh> // next;
        $st =~ s/^.*\)\s+//s;
        my @f = split ' ', $st;
        $t += $f[11] + $f[12];     # utime stime (fields 14, 15)
    }
    return $t;
}

sub comm {
    my ($pid) = @_;
    open my $fh, '<', "/proc/$pid/comm" or return '';
    my $c = <$fh> // '';
    chomp $c;
    return $c;
}

sub threads_of {
    my ($pid) = @_;
    opendir my $d, "/proc/$pid/task" or return 0;
    return scalar grep { /^\d+$/ } readdir $d;
}

# the worker burning CPU while the job runs; ties go to the one with more
# threads (the thread pool's codec threads)
sub busy_worker {
    my ($ng) = @_;
    my @w = @{ $ng->worker_pids };
    # process isolation: the worker whose sandbox helper has a job child
    # (not its spare, which every helper keeps ready)
    my @owner = grep {
        grep { grep { comm($_) ne 'vconv-spare' } @{ VconvNginx::_children($_) } }
            @{ VconvNginx::_children($_) }
    } @w;
    return $owner[0] if @owner == 1;
    my %a = map { $_ => cpu_ticks($_) // 0 } @w;
    sleep 1.5;
    my %b = map { $_ => cpu_ticks($_) // 0 } @w;
    my %t = map { $_ => threads_of($_) } @w;
    my ($best) = sort { ($b{$b} - $a{$b}) <=> ($b{$a} - $a{$a})
                        || $t{$b} <=> $t{$a} } @w;
    diag(join ', ', map { "worker $_: " . ($b{$_} - $a{$_}) . ' ticks, '
                          . "$t{$_} threads" } @w);
    return ($b{$best} - $a{$best}) >= 10 ? $best : undef;
}

my $ng = VconvNginx->new(workers => 2, store_opts => 'ttl=1h')->start;

for my $sig (qw(KILL SEGV)) {
    # a job done before the crash
    my $r = $ng->post_file('/api/jobs?format=mp4&wait=1&keep=1', $small, name => 'before.mp4', NC);
    is($r->{status}, 200, "[$sig] a short job is done before");
    my @before_ids = @{ $ng->store_entries };

    $r = $ng->post_file('/api/jobs?format=webm', $long, name => 'long.mp4', NC);
    is($r->{status}, 202, "[$sig] long 1080p -> webm job taken");
    my $id = $r->{json} ? $r->{json}{id} : 'none';
    my $running = VconvNginx::poll(20, sub {
        my $j = $ng->get("/api/jobs/$id", NC)->{json} // {};
        ($j->{status} // '') eq 'running' && ($j->{progress} // 0) > 0.02;
    }, 0.1);
    ok($running, "[$sig] ... running with progress");

    my $victim = busy_worker($ng);
    ok($victim, "[$sig] found the worker running it (" . ($victim // 'none') . ')');
    $victim //= $ng->worker_pids->[0];
    my @others = grep { $_ != $victim } @{ $ng->worker_pids };
    my @files_before = sort map { s{.*/}{}r } glob($ng->store . "/$id/*");
    ok(grep({ $_ eq 'input' } @files_before),
       "[$sig] the job folder has its input while running (@files_before)");

    my $t0 = time;
    kill $sig, $victim;
    my $job;
    my $marked = VconvNginx::poll(10, sub {
        $job = $ng->get("/api/jobs/$id", max_time => 3, NC)->{json} // {};
        ($job->{status} // '') eq 'failed';
    }, 0.1);
    my $took = time - $t0;
    ok($marked && ($job->{error}{code} // '') eq 'interrupted',
       sprintf("[$sig] the job is failed 'interrupted' after %.1f s (%s)",
               $took, ($job->{status} // '?') . ' ' . ($job->{error}{code} // '')))
        or diag($J->encode($job // {}));
    cmp_ok($took, '<', 5, "[$sig] ... within a few seconds");

    my @files;
    my $clean = VconvNginx::poll(5, sub {
        @files = sort map { s{.*/}{}r } glob($ng->store . "/$id/*");
        "@files" eq 'job.json';
    }, 0.1);
    ok($clean, "[$sig] its input and temporary output are removed, job.json stays (@files)");
    ok(!kill(0, $victim), "[$sig] the victim is gone");
    ok(!grep({ !kill 0, $_ } @others), "[$sig] the other worker lives");
    VconvNginx::poll(10, sub { @{ $ng->worker_pids } == 2 });
    is(scalar @{ $ng->worker_pids }, 2, "[$sig] the master started a new worker");

    # jobs done before are still done
    my @bad;
    for my $bid (@before_ids) {
        my $j = $ng->get("/api/jobs/$bid", NC)->{json} // {};
        push @bad, "$bid:" . ($j->{status} // '?')
            if ($j->{status} // '') ne 'done' && $bid ne $id;
    }
    is("@bad", '', "[$sig] earlier done jobs are untouched");

    # still final (nothing brings it back to running) and persisted
    sleep 1.2;
    my $j2 = $ng->get("/api/jobs/$id", NC)->{json} // {};
    is($j2->{status} // '', 'failed', "[$sig] it stays failed");
    my $saved = eval { $J->decode(slurp($ng->store . "/$id/job.json")) } // {};
    is($saved->{status} // '', 'failed', "[$sig] job.json on disk says failed");

    # new jobs complete, on whichever worker takes them
    my @p = map {
        $ng->post_file('/api/jobs?format=mp4&wait=1', $small, name => "after$_.mp4",
                       async => 1, max_time => 60, NC)
    } 1 .. 4;
    my @st = map { $_->wait->{status} } @p;
    is("@st", '200 200 200 200', "[$sig] four new jobs after the crash are done");

    # DELETE of the interrupted job works and the folder goes
    is($ng->delete($id, NC)->{status}, 204, "[$sig] DELETE of the interrupted job -> 204");
    ok(VconvNginx::poll(3, sub { !-e $ng->store . "/$id" }), "[$sig] ... its folder is gone");
}

my @alerts = grep { /\[alert\]|exited on signal/ } split /\n/, $ng->error_log;
my @unexpected = grep { !/exited on signal (9|11)\b/ } @alerts;
is(scalar @unexpected, 0, 'no alert besides the two killed workers')
    or diag(join "\n", @unexpected);
$ng->stop;

done_testing;
